"""Rollouts spread over Ray actors, stored exactly once by the driver.

Each `EpisodeWorker` actor opens its own backend and runner (`open_runner`) in its own event
loop, runs up to `per_worker` episodes at once, and keeps its sandboxes under a folder of its
own (`workdir/worker-<index>-<pid>`), so a restarted worker never reuses a dead one's files.
Results stream back as they finish; the driver alone writes the store.

Exactly once: an episode's id is `task#sample` and its seed follows from it, so a rerun is the
same episode; the store skips an id it holds, so a result that arrives twice is written once.
A worker killed mid-episode loses only unacknowledged work (acknowledged = in the store): its
in-flight episodes come back as errors, go to the front of the queue and rerun on another
worker, while Ray restarts the dead actor (`max_restarts=-1`) for later episodes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

import ray
from ray.exceptions import RayActorError, WorkerCrashedError

from longhorizon.core import Status, Task, Trajectory, TrajectoryStore
from longhorizon.core.progress import progress_bar
from longhorizon.harness import EpisodeRunner, RolloutReport, run_episode, trajectory_id
from longhorizon.scaleout.spec import RolloutSpec, open_runner

__all__ = ["EpisodeWorker", "WorkerLost", "run_rollouts_ray", "start_workers"]

# Errors that mean the worker process died, not that the episode failed: rerun it elsewhere.
WORKER_DEATHS = (RayActorError, WorkerCrashedError)


class WorkerLost(RuntimeError):
    """An episode whose workers kept dying (`max_reruns` times): the run stops, naming it."""


@ray.remote(max_restarts=-1, max_task_retries=0)
class EpisodeWorker:
    """One worker process: its own backend, runner and sandboxes; episodes run concurrently."""

    def __init__(self, spec: RolloutSpec, index: int) -> None:
        workdir = spec.harness.workdir / f"worker-{index}-{os.getpid()}"
        harness = spec.harness.model_copy(update={"workdir": workdir})
        self.spec = spec.model_copy(update={"harness": harness})
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
                self._runner = await self._stack.enter_async_context(open_runner(self.spec))
        return self._runner

    async def close(self) -> None:
        await self._stack.aclose()


def start_workers(
    spec: RolloutSpec, workers: int, per_worker: int, cpus_per_worker: float = 1.0
) -> list[ray.actor.ActorHandle]:
    """`workers` actors, each running up to `per_worker` episodes at once."""
    return [
        EpisodeWorker.options(  # type: ignore[attr-defined]
            num_cpus=cpus_per_worker, max_concurrency=per_worker
        ).remote(spec, index)
        for index in range(workers)
    ]


@dataclass
class _Job:
    task: Task
    sample: int
    lost: int = 0  # times its worker died under it
    avoid: int | None = None  # the worker it died on: rerun elsewhere when possible


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
    jobs = [_Job(t, s) for t in tasks for s in range(samples_per_task)]
    todo = deque(j for j in jobs if trajectory_id(j.task, j.sample) not in store)
    report = RolloutReport(total=len(jobs), skipped=len(jobs) - len(todo))
    in_flight: dict[ray.ObjectRef, tuple[_Job, int]] = {}
    load = [0] * len(workers)
    start = time.perf_counter()
    with progress_bar(show_progress) as progress:
        bar = progress.add_task(
            "rollouts (ray)", total=len(jobs), completed=report.skipped, stats=""
        )
        while todo or in_flight:
            _submit(workers, todo, in_flight, load, per_worker)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                job, index = in_flight.pop(ref)
                load[index] -= 1
                try:
                    traj = Trajectory.model_validate_json(ray.get(ref))
                except WORKER_DEATHS as exc:
                    _requeue(job, index, todo, report, max_reruns, exc)
                    continue
                report.wall_s = time.perf_counter() - start
                _record(traj, store, report)
                if on_stored is not None:
                    on_stored(traj, report)
                progress.update(bar, advance=1, stats=report.line())
    report.wall_s = time.perf_counter() - start
    return report


def _submit(
    workers: list[ray.actor.ActorHandle],
    todo: deque[_Job],
    in_flight: dict[ray.ObjectRef, tuple[_Job, int]],
    load: list[int],
    per_worker: int,
) -> None:
    """Fill every worker up to `per_worker` episodes, least loaded first; a rerun avoids the
    worker it died on unless that is the only one."""
    waiting: deque[_Job] = deque()
    while todo and min(load) < per_worker:
        job = todo.popleft()
        free = [i for i in range(len(workers)) if load[i] < per_worker]
        elsewhere = [i for i in free if i != job.avoid] if len(workers) > 1 else free
        if not elsewhere:
            waiting.append(job)
            continue
        index = min(elsewhere, key=lambda i: (load[i], i))
        ref: ray.ObjectRef = workers[index].run.remote(job.task.model_dump_json(), job.sample)
        in_flight[ref] = (job, index)
        load[index] += 1
    todo.extendleft(reversed(waiting))


def _requeue(
    job: _Job, index: int, todo: deque[_Job], report: RolloutReport, max_reruns: int, exc: Exception
) -> None:
    job.lost += 1
    if job.lost > max_reruns:
        raise WorkerLost(
            f"episode {trajectory_id(job.task, job.sample)}: its worker died {job.lost} times; "
            f"last: {type(exc).__name__}: {exc}"
        ) from exc
    job.avoid = index
    report.reruns += 1
    todo.appendleft(job)  # first in line: it was started before everything still queued


def _record(traj: Trajectory, store: TrajectoryStore, report: RolloutReport) -> None:
    if traj.status is Status.ABORTED:
        report.aborted += 1
        report.abort_reasons.append(f"{traj.id}: {traj.status_reason}")
    elif store.add(traj):
        report.add(traj)
    else:
        report.duplicates += 1
