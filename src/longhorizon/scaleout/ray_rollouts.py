"""Rollouts spread over Ray actors, stored exactly once by the driver.

Each `EpisodeWorker` actor opens its own backend and runner (`open_runner`) in its own event
loop, runs up to `per_worker` episodes at once, and keeps its sandboxes under a folder of its
own (`workdir/worker-<index>-<pid>`), so a restarted worker never reuses a dead one's files.
Results stream back as they finish; the driver alone writes the store.

Exactly once: an episode's id is `task#sample` and its seed follows from it, so a rerun is the
same episode; the store skips an id it holds, so a result that arrives twice is written once.
A worker killed mid-episode loses only unacknowledged work (acknowledged = in the store): its
in-flight episodes come back as errors, go to the front of the queue and rerun on another
worker, while Ray restarts the dead actor (`max_restarts=-1`) for later episodes
(`ray_pool.stream_on_workers`, shared with `synth --ray`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import ray

from longhorizon.core import Status, Task, Trajectory, TrajectoryStore
from longhorizon.core.progress import progress_bar
from longhorizon.harness import EpisodeRunner, RolloutReport, run_episode, trajectory_id
from longhorizon.scaleout.ray_pool import WorkerLost, start_actors, stream_on_workers
from longhorizon.scaleout.spec import RolloutSpec, RulesFor, open_runner

__all__ = ["EpisodeWorker", "WorkerLost", "run_rollouts_ray", "start_workers"]


@ray.remote(max_restarts=-1, max_task_retries=0)
class EpisodeWorker:
    """One worker process: its own backend, runner and sandboxes; episodes run concurrently."""

    def __init__(self, spec: RolloutSpec, index: int, rules_for: RulesFor | None = None) -> None:
        workdir = spec.harness.workdir / f"worker-{index}-{os.getpid()}"
        harness = spec.harness.model_copy(update={"workdir": workdir})
        self.spec = spec.model_copy(update={"harness": harness})
        self.rules_for = rules_for
        self._stack = AsyncExitStack()
        self._runner: EpisodeRunner | None = None
        self._opening: asyncio.Lock | None = None

    async def pid(self) -> int:
        return os.getpid()

    async def run(self, task_json: str, sample: int) -> str:
        """Run one episode; the trajectory as JSON (an ABORTED one too: the driver decides)."""
        runner = await self._open()
        traj = await run_episode(runner, Task.model_validate_json(task_json), sample)
        return traj.model_dump_json()

    async def _open(self) -> EpisodeRunner:
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:  # the first episodes wait for one model load, not several
            if self._runner is None:
                workdir = self.spec.harness.workdir
                rules = None if self.rules_for is None else self.rules_for(workdir / "world")
                runner = open_runner(self.spec, rules)
                self._runner = await self._stack.enter_async_context(runner)
        return self._runner

    async def close(self) -> None:
        await self._stack.aclose()


def start_workers(
    spec: RolloutSpec,
    workers: int,
    per_worker: int,
    cpus_per_worker: float = 1.0,
    rules_for: RulesFor | None = None,
) -> list[ray.actor.ActorHandle]:
    """`workers` actors, each running up to `per_worker` episodes at once; `rules_for` builds
    each one's verifier and resources (a domain's) in the worker."""
    return start_actors(EpisodeWorker, spec, workers, per_worker, cpus_per_worker, (rules_for,))


OnStored = Callable[[Trajectory, RolloutReport], None]


def run_rollouts_ray(
    workers: list[ray.actor.ActorHandle],
    tasks: list[Task],
    store: TrajectoryStore,
    *,
    per_worker: int = 4,
    samples_per_task: int = 1,
    max_reruns: int = 3,
    show_progress: bool = True,
    on_stored: OnStored | None = None,
) -> RolloutReport:
    """Run every (task, sample) not yet in `store` on `workers`; ABORTED episodes are not
    stored (a rerun of the command tries them again), as in `harness.run_rollouts`."""
    jobs = [(t, s) for t in tasks for s in range(samples_per_task)]
    todo = [(t, s) for t, s in jobs if trajectory_id(t, s) not in store]
    report = RolloutReport(total=len(jobs), skipped=len(jobs) - len(todo))
    start = time.perf_counter()

    def rerun(job: tuple[Task, int]) -> None:
        del job
        report.reruns += 1

    results = stream_on_workers(
        workers,
        todo,
        lambda worker, job: worker.run.remote(job[0].model_dump_json(), job[1]),
        per_worker=per_worker,
        name=lambda job: f"episode {trajectory_id(*job)}",
        max_reruns=max_reruns,
        on_rerun=rerun,
    )
    with progress_bar(show_progress) as progress:
        bar = progress.add_task(
            "rollouts (ray)", total=len(jobs), completed=report.skipped, stats=""
        )
        for _, payload in results:
            traj = Trajectory.model_validate_json(payload)
            report.wall_s = time.perf_counter() - start
            _record(traj, store, report)
            if on_stored is not None:
                on_stored(traj, report)
            progress.update(bar, advance=1, stats=report.line())
    report.wall_s = time.perf_counter() - start
    return report


def _record(traj: Trajectory, store: TrajectoryStore, report: RolloutReport) -> None:
    if traj.status is Status.ABORTED:
        report.aborted += 1
        report.abort_reasons.append(f"{traj.id}: {traj.status_reason}")
    elif store.add(traj):
        report.add(traj)
    else:
        report.duplicates += 1
