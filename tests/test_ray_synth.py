"""`synth --ray` on a real local Ray cluster (2 one-CPU workers on 127.0.0.1): the tool domain's
scripted expert solves on the workers, the driver proposes, decides and writes, and the run
keeps exactly the tasks of the single-process run with the same seed, each stored once; also
when a worker is SIGKILLed with attempts in flight."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Task
from longhorizon.domains import TOOL, synthesize
from longhorizon.domains.synth import SynthWorkerSpec
from longhorizon.synthesis.attempt import Attempt

N = 12


def stored_ids(root: Path) -> Counter[str]:
    """Every id written in a store's shards, counted (a duplicate line would show as 2)."""
    lines = [line for p in sorted(root.glob("part-*.jsonl")) for line in p.read_text().splitlines()]
    return Counter(json.loads(line)["id"] for line in lines)


def kag_rows(out: Path) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Every proposal's verdict and every recorded episode, as the KAG holds them."""
    with sqlite3.connect(out / "kag.db") as db:
        tasks = db.execute("SELECT id, status, reason, attempts FROM tasks ORDER BY id")
        trajs = db.execute("SELECT id, role, status, passed FROM trajectories ORDER BY id")
        return tasks.fetchall(), trajs.fetchall()


def assert_same_run(out: Path, baseline: Path) -> None:
    """The same accepted tasks and trajectories, each stored once, and the same KAG."""
    tasks = stored_ids(out / "tasks")
    assert tasks == stored_ids(baseline / "tasks") and set(tasks.values()) == {1}
    assert len(tasks) == N
    trajs = stored_ids(out / "trajectories")
    assert trajs == Counter(f"{task}/solve" for task in tasks)
    assert kag_rows(out) == kag_rows(baseline)


def synth_cmd(out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "longhorizon.cli.main", "synth", "--domain", "tool"]
    return [*cmd, "--n", str(N), "--out", str(out), "--seed", "0", *extra]


def run_ok(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """The command run to success, the benchmark audit off (it is not what is tested)."""
    env = {**os.environ, "LONGHORIZON_BENCHMARKS": "none"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=420, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_cli_synth_ray_keeps_the_single_process_tasks(ray_cluster: str, tmp_path: Path) -> None:
    run_ok(synth_cmd(tmp_path / "one"))
    done = run_ok(synth_cmd(tmp_path / "ray", "--ray", ray_cluster, "--workers", "2"))
    assert_same_run(tmp_path / "ray", tmp_path / "one")
    assert "(raylet)" not in done.stderr  # worker logs stay in Ray's files


def test_ray_with_a_model_is_a_usage_error(tmp_path: Path) -> None:
    args = ["synth", "--domain", "tool", "--out", str(tmp_path), "--model", "m", "--ray", "local"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--ray runs the domain's scripted experts; drop --model" in " ".join(
        result.output.split()
    )


def restarted_pid(worker: object, wait_s: float = 60.0) -> int:
    """The pid of an actor Ray is restarting, once it is back (asked again while it is not)."""
    import ray
    from ray.exceptions import ActorUnavailableError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return int(ray.get(worker.pid.remote()))  # type: ignore[attr-defined]
        except ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class FreezeThenKill:
    """Wraps the Ray runner: freezes worker `pid` (SIGSTOP) before the second batch of two or
    more proposals is sent, then SIGKILLs it when that batch's first result (from the other
    worker) is in, so every attempt the frozen worker was sent dies unfinished."""

    def __init__(self, inner: object, pid: int) -> None:
        self.inner, self.pid = inner, pid
        self.batches = 0
        self.killed = False

    async def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]:
        self.batches += len(tasks) >= 2
        target = self.batches == 2 and not self.killed
        if target:
            os.kill(self.pid, signal.SIGSTOP)
        async for item in self.inner.attempts(tasks):  # type: ignore[attr-defined]
            if target and not self.killed:
                os.kill(self.pid, signal.SIGKILL)
                self.killed = True
            yield item


def test_a_killed_worker_changes_no_task(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    from longhorizon.domains.synth_ray import RayAttempts, start_synth_workers

    monkeypatch.setenv("LONGHORIZON_BENCHMARKS", "none")
    asyncio.run(synthesize(TOOL, N, tmp_path / "one", seed=0))
    out = tmp_path / "ray"
    workers = start_synth_workers(SynthWorkerSpec(domain="tool", out=out), 2, per_worker=4)
    pids = ray.get([w.pid.remote() for w in workers])
    runner = RayAttempts(workers, per_worker=4)
    killer = FreezeThenKill(runner, pids[0])
    asyncio.run(synthesize(TOOL, N, out, seed=0, runner=killer))
    assert killer.killed and runner.reruns >= 1
    assert_same_run(out, tmp_path / "one")
    assert restarted_pid(workers[0]) != pids[0]  # Ray restarted the dead actor
    assert ray.get(workers[1].pid.remote()) == pids[1]
    for w in workers:
        ray.kill(w)
