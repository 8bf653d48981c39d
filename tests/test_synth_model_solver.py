"""Synthesis with a model solver: `longhorizon synth --solver hf|openai|vllm --model M`.

The served run uses the session's real vLLM server (SmolLM2-135M): it is killed mid-batch
and rerun, and every proposal ends in the KAG exactly once with its verdict and reasons."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import TaskStore
from longhorizon.serving.vllm import VLLMServer


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--solver", "sglang", "--model", "m"], "--solver must be hf, openai or vllm"),
        (["--solver", "vllm"], "--solver vllm needs --model"),
        (["--solver", "openai", "--model", "m"], "--base-url goes with --solver openai"),
        (["--model", "m", "--base-url", "http://x/v1"], "--base-url goes with --solver openai"),
    ],
)
def test_bad_solver_options_are_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["synth", "--domain", "search", "--out", str(tmp_path), *args], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def _kag_rows(db: Path, table: str) -> list[tuple[str, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=30) as conn:
        try:
            return conn.execute(f"SELECT * FROM {table}").fetchall()
        except sqlite3.OperationalError:  # the schema is not written yet
            return []


@pytest.mark.vllm
def test_a_served_model_solves_and_a_killed_run_resumes(
    vllm_server: VLLMServer, tmp_path: Path
) -> None:
    out = tmp_path / "synth"
    cmd = [
        sys.executable, "-m", "longhorizon.cli.main", "synth", "--domain", "search",
        "--n", "1", "--out", str(out), "--concurrency", "5", "--seed", "3",
        "--solver", "openai", "--base-url", vllm_server.base_url,
        "--model", vllm_server.served_model_name, "--tokenizer", vllm_server.model_path,
        "--level", '{"entities": 60, "hops": [1, 1]}',
    ]  # fmt: skip
    env = {**os.environ, "LONGHORIZON_BENCHMARKS": "none"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 600
    while not _kag_rows(out / "kag.db", "trajectories") and first.poll() is None:
        assert time.monotonic() < deadline, "no attempt recorded in 10 minutes"
        time.sleep(0.5)
    assert first.poll() is None, first.stderr.read() if first.stderr else ""
    first.send_signal(signal.SIGKILL)  # mid-run: attempts recorded, the run not finished
    first.wait()
    before = {row[0] for row in _kag_rows(out / "kag.db", "trajectories")}
    decided = {row[0] for row in _kag_rows(out / "kag.db", "tasks")}  # usually none yet
    assert before

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    report = json.loads((out / "synth_report.json").read_text())
    tasks = {row[0]: row for row in _kag_rows(out / "kag.db", "tasks")}
    # The killed run's decisions stand (skipped, not redone); the rest were attempted again.
    assert decided <= set(tasks) and report["skipped_known"] >= len(decided)
    assert len(tasks) == len(decided) + report["proposed"]  # each proposal in the KAG once
    attempts = _kag_rows(out / "kag.db", "trajectories")
    assert before <= {row[0] for row in attempts}  # the killed run's attempts, overwritten
    assert {row[1] for row in attempts} <= set(tasks)  # every attempt belongs to a task
    assert all(row[0].split("/")[-1] in ("solve", "guess") for row in attempts)
    accepted = [t.id for t in TaskStore(out / "tasks")]
    assert len(accepted) == report["accepted"] <= 1
    assert all(tasks[i][2] == "accepted" for i in accepted)
    rejected = [row for row in tasks.values() if row[2] == "rejected"]
    assert len(rejected) == len(tasks) - len(accepted) and all(row[3] for row in rejected)
