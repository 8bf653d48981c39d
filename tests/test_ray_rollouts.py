"""`rollout --ray` on a real local Ray cluster (2 one-CPU workers on 127.0.0.1): 64 episodes of
a real tiny model stored exactly once, also when a worker process is killed mid-run.

The policy is `tiny-tool-caller` (a 7M-parameter seeded model): a calculator call, then the
answer, two model calls an episode, every episode passing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from longhorizon.core import Budgets, Protocol, Task, Trajectory, TrajectoryStore
from longhorizon.harness import HarnessConfig, RolloutReport
from longhorizon.models.tool_caller import QUESTION
from longhorizon.scaleout import RolloutSpec

PROTOCOL = Protocol(tools=("calculator",), budgets=Budgets(max_turns=4, max_response_tokens=48))
TASKS = [
    Task(id=f"add-{i}", domain="arithmetic", instruction=QUESTION, answer="5", protocol=PROTOCOL)
    for i in range(64)
]


def stored_ids(root: Path) -> Counter[str]:
    """Every id written in the store's shards, counted (a duplicate line would show as 2)."""
    lines = [line for p in sorted(root.glob("part-*.jsonl")) for line in p.read_text().splitlines()]
    return Counter(json.loads(line)["id"] for line in lines)


def test_cli_rollout_ray_stores_64_episodes_once(ray_cluster: str, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(t.model_dump_json() + "\n" for t in TASKS))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "longhorizon.cli.main", "rollout", "--tasks", str(tasks)]
    cmd += ["--model", "tiny-tool-caller", "--out", str(out), "--concurrency", "4"]
    cmd += ["--ray", ray_cluster, "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert stored_ids(out / "trajectories") == Counter(f"{t.id}#0" for t in TASKS)
    report = json.loads((out / "report.json").read_text())
    assert (report["finished"], report["passed"], report["aborted"]) == (64, 64, 0)
    assert "(raylet)" not in done.stderr  # worker logs stay in Ray's files

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=420)  # a rerun: resume
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "report.json").read_text())["skipped"] == 64
    assert sum(stored_ids(out / "trajectories").values()) == 64


def test_killed_worker_loses_nothing_and_its_episodes_rerun(
    ray_cluster: str, tmp_path: Path
) -> None:
    import ray

    from longhorizon.scaleout.ray_rollouts import _record, run_rollouts_ray, start_workers

    spec = RolloutSpec(model="tiny-tool-caller", harness=HarnessConfig(workdir=tmp_path / "w"))
    workers = start_workers(spec, workers=2, per_worker=4)
    pids = ray.get([w.pid.remote() for w in workers])
    killed: list[int] = []

    def kill_worker_0(traj: Trajectory, report: RolloutReport) -> None:
        if report.finished == 8 and not killed:  # mid-run: worker 0 has episodes in flight
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    store = TrajectoryStore(tmp_path / "trajectories")
    report = run_rollouts_ray(
        workers, TASKS, store, per_worker=4, show_progress=False, on_stored=kill_worker_0
    )
    store.close()
    assert killed == [pids[0]]
    assert report.reruns >= 1 and report.finished == 64 and report.passed == 64
    assert report.duplicates == 0 and report.aborted == 0
    assert stored_ids(tmp_path / "trajectories") == Counter(f"{t.id}#0" for t in TASKS)
    restarted = ray.get(workers[0].pid.remote())  # Ray restarted the dead actor
    assert restarted != pids[0] and ray.get(workers[1].pid.remote()) == pids[1]
    for w in workers:
        ray.kill(w)

    # A result that arrives again (its first run finished after all) is not written twice.
    store = TrajectoryStore(tmp_path / "trajectories")
    again = RolloutReport()
    _record(next(iter(store)), store, again)
    store.close()
    assert (again.finished, again.duplicates) == (0, 1)
    assert sum(stored_ids(tmp_path / "trajectories").values()) == 64
