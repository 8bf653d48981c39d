"""Concurrent rollouts: N episodes at once, streamed into a store, resumable, with live progress."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from longhorizon.core import Status, Task, Trajectory, TrajectoryStore
from longhorizon.core.progress import progress_bar
from longhorizon.harness.episode import EpisodeRunner


@dataclass
class RolloutReport:
    """Totals of one rollout run (episodes already in the store are counted as skipped)."""

    total: int = 0
    skipped: int = 0
    finished: int = 0
    passed: int = 0
    aborted: int = 0
    reruns: int = 0  # episodes started again after their worker died (Ray)
    duplicates: int = 0  # results whose id was already stored, so not written again
    statuses: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    model_calls: int = 0
    model_s: float = 0.0
    tools_s: float = 0.0
    wall_s: float = 0.0
    abort_reasons: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.passed / self.finished if self.finished else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s else 0.0

    @property
    def tool_share(self) -> float:
        busy = self.model_s + self.tools_s
        return self.tools_s / busy if busy else 0.0

    def add(self, traj: Trajectory) -> None:
        self.finished += 1
        self.passed += traj.passed
        self.statuses[traj.status.value] += 1
        self.tokens += traj.usage.completion_tokens
        self.model_calls += traj.usage.model_calls
        self.model_s += traj.timings.model_s
        self.tools_s += traj.timings.tools_s

    def line(self) -> str:
        return (
            f"pass {self.success_rate:.0%} | {self.tokens_per_s:.0f} tok/s | "
            f"tools {self.tool_share:.0%} of time"
        )


def trajectory_id(task: Task, sample: int) -> str:
    return f"{task.id}#{sample}"


async def run_rollouts(
    runner: EpisodeRunner,
    tasks: list[Task],
    store: TrajectoryStore,
    *,
    concurrency: int = 8,
    samples_per_task: int = 1,
    show_progress: bool = True,
) -> RolloutReport:
    """Run every (task, sample) not yet in `store`; ABORTED episodes are retried, never stored."""
    jobs = [(t, s) for t in tasks for s in range(samples_per_task)]
    todo = [(t, s) for t, s in jobs if trajectory_id(t, s) not in store]
    report = RolloutReport(total=len(jobs), skipped=len(jobs) - len(todo))
    queue: asyncio.Queue[tuple[Task, int]] = asyncio.Queue()
    for job in todo:
        queue.put_nowait(job)
    start = time.perf_counter()
    with progress_bar(show_progress) as progress:
        bar = progress.add_task("rollouts", total=len(jobs), completed=report.skipped, stats="")

        async def worker() -> None:
            while not queue.empty():
                task, sample = queue.get_nowait()
                traj = await run_episode(runner, task, sample)
                report.wall_s = time.perf_counter() - start
                if traj.status is Status.ABORTED:
                    report.aborted += 1
                    report.abort_reasons.append(f"{traj.id}: {traj.status_reason}")
                else:
                    store.add(traj)
                    report.add(traj)
                progress.update(bar, advance=1, stats=report.line())

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    report.wall_s = time.perf_counter() - start
    return report


async def run_episode(runner: EpisodeRunner, task: Task, sample: int) -> Trajectory:
    """Sample `sample` of `task`, its id and seed fixed by both; an ABORTED run is retried."""
    seed = runner.config.sampling.seed
    seed = None if seed is None else seed + sample
    traj = await runner.run(task, trajectory_id(task, sample), seed=seed)
    for _ in range(runner.config.abort_retries):
        if traj.status is not Status.ABORTED:
            break
        traj = await runner.run(task, trajectory_id(task, sample), seed=seed)
    return traj
