"""bench/_common.py: one result writer for every benchmark, and a clear exit for a missing peer."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from rich.console import Console

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _load_common() -> ModuleType:
    # bench/ is a folder of scripts, not a package: load the module from its file.
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "_common.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load_common()


def test_write_result_writes_payload_and_provenance(tmp_path: Path) -> None:
    path = common.write_result("demo", {"rows": [1, 2], "note": "x"}, results_dir=tmp_path)
    assert path == tmp_path / "demo.json"
    record = json.loads(path.read_text())
    assert list(record)[:2] == ["bench", "provenance"]
    assert record["bench"] == "demo"
    assert record["rows"] == [1, 2] and record["note"] == "x"
    meta = record["provenance"]
    assert meta["cpu_count"] == os.cpu_count()
    assert meta["code_version"].startswith("0.1.0")
    assert set(meta["versions"]) == {"torch", "transformers", "accelerate", "trl", "vllm"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.json"]  # no temp file left


def test_write_result_refuses_its_own_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"payload keys \['provenance'\] are written"):
        common.write_result("demo", {"provenance": {}}, results_dir=tmp_path)


def test_require_peer_returns_the_module() -> None:
    assert common.require_peer("json") is json


def test_require_peer_exits_with_the_install_command() -> None:
    with pytest.raises(SystemExit) as caught:
        common.require_peer("no_such_peer_module", "pip install no-such-peer")
    message = str(caught.value)
    assert "compares against 'no_such_peer_module', which cannot be imported" in message
    assert message.endswith("Install it with: pip install no-such-peer")


@pytest.mark.parametrize("script", ["opd_vs_trl.py", "grpo_vs_trl.py"])
def test_trl_benches_without_trl_say_how_to_install_it(tmp_path: Path, script: str) -> None:
    # A `trl` that fails to import stands for a machine without TRL, installed or not.
    (tmp_path / "trl.py").write_text("raise ImportError('TRL is not installed')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), "--order", "ours,trl"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Install it with: pip install -r requirements-bench.txt" in proc.stderr
    assert "pip install 'trl==1.16.*'" in proc.stderr
    assert proc.stdout == ""  # exits before loading any model


def _load_bench(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the scripts import `_common` as their neighbour
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


def _render_80(*tables: Any) -> str:
    console = Console(width=80, record=True)
    for table in tables:
        console.print(table)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    return text


def _stored(name: str) -> dict[str, Any]:
    return json.loads((BENCH / "results" / f"{name}.json").read_text())


def test_bench_tables_read_whole_at_80_columns() -> None:
    throughput = _load_bench("backend_throughput")
    text = _render_80(throughput.table(_stored("backend_throughput")["tokens_per_s"]))
    assert "openai backend -> vLLM, concurrency 8" in text
    rollout, stored = _load_bench("rollout_concurrency"), _stored("rollout_concurrency")
    tables = [rollout.table(m, r, 64, 3) for m, r in stored["models"].items()]
    text = _render_80(*tables)
    assert "bare client CPU ms/episode" in text and "harness overhead (goal < 5%)" in text
    sva = _load_bench("sva_loss")
    text = _render_80(sva.table(_stored("sva_loss")["rows"]))
    assert "sva k=64 + coverage" in text and "T=8,192 V=151,936" in text


def test_grpo_bench_reward_is_the_same_on_both_sides() -> None:
    from longhorizon.core import RunProvenance, Status, Task, Trajectory
    from longhorizon.core.tokens import ModelCall
    from longhorizon.rl.config import GRPOObjective
    from longhorizon.rl.samples import rollout_reward

    bench = _load_bench("grpo_vs_trl")
    verify = bench.parity_verify(4)
    task = Task(id="p0", domain="p0", instruction="x", answer="")
    objective = GRPOObjective(reward="fraction", overlong="keep")
    cases = {(2, 4, 6, 8, 1): 1.0, (1, 2, 3, 5, 6): 0.25, (7, 10): 0.25, (): 0.0}
    for ids, expected in cases.items():
        call = ModelCall(new_prompt_ids=[1], completion_ids=list(ids))
        traj = Trajectory(
            id="t",
            task_id="p0",
            domain="p0",
            calls=[call],
            status=Status.TRUNCATED,
            provenance=RunProvenance(model="m", backend="hf"),
        )
        traj = traj.model_copy(update={"verdicts": verify(task, traj)})
        assert bench.even_share(list(ids), 4) == expected  # TRL's reward function
        assert rollout_reward(traj, objective) == expected  # ours, from the verdicts
