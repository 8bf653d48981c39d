"""One proposal's episodes: the solve, then (when it passed) the no-tool guess.

These are the only part of self-play that runs away from the driver: `LocalAttempts` runs them
as asyncio tasks in the driver's process, and `synth --ray` runs the same `attempt_episodes`
on Ray workers (`longhorizon.domains.synth_ray`). Both only return trajectories; the driver
records them in the KAG and decides, so the KAG and the stores have one writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from longhorizon.core import Task, Trajectory
from longhorizon.harness import EpisodeRunner, HarnessConfig, Limits
from longhorizon.harness.agent import Agent
from longhorizon.synthesis.types import Domain
from longhorizon.tools.base import ToolSet

__all__ = ["Attempt", "AttemptRunner", "LocalAttempts", "attempt_episodes"]


@dataclass(frozen=True)
class Attempt:
    """A proposal's solve and its no-tool guess (None: not tried)."""

    solve: Trajectory
    guess: Trajectory | None = None

    def trajectories(self) -> list[tuple[Trajectory, str]]:
        """(trajectory, KAG role) pairs, solve first."""
        pairs = [(self.solve, "solve")]
        return pairs if self.guess is None else [*pairs, (self.guess, "guess")]


class AttemptRunner(Protocol):
    """Runs the episodes of a batch of proposals and yields (index in batch, attempt) as each
    finishes; the caller decides in proposal order once the batch is in."""

    def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]: ...


async def attempt_episodes(
    domain: Domain, harness: HarnessConfig, limits: Limits, task: Task, seed: int
) -> Attempt:
    """Solve `task`; when the solve passed and the task has tools, also try it without tools."""
    run = EpisodeRun(domain, harness, limits, task, seed)
    solve = await run("solve", domain.solver, domain.toolset)
    # A task without tools (a reasoning task) has nothing to shortcut: the solver itself
    # answers without tools, so a right no-tool guess says nothing about the task.
    if not (solve.passed and domain.guesser is not None and task.protocol.tools):
        return Attempt(solve)
    guess = await run("guess", domain.guesser, _no_tools)
    return Attempt(solve, guess)


@dataclass(frozen=True)
class EpisodeRun:
    """One proposal's episode of a role (its id: `task/role`, its seed: the run's)."""

    domain: Domain
    harness: HarnessConfig
    limits: Limits
    task: Task
    seed: int

    async def __call__(
        self, role: str, agent_for: Callable[[Task], Agent], toolset_for: Callable[[Task], ToolSet]
    ) -> Trajectory:
        runner = EpisodeRunner(
            agent_for(self.task),
            toolset_for,
            self.harness,
            verify=self.domain.verify,
            resources=self.domain.resources,
            limits=self.limits,
        )
        return await runner.run(self.task, f"{self.task.id}/{role}", seed=self.seed)


def _no_tools(task: Task) -> ToolSet:
    del task
    return ToolSet([])


class LocalAttempts:
    """The embedded path: every proposal of a batch as an asyncio task in this process."""

    def __init__(self, domain: Domain, harness: HarnessConfig, seed: int) -> None:
        self.domain, self.harness, self.seed = domain, harness, seed
        self.limits = Limits.from_config(harness)

    async def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]:
        async def one(index: int, task: Task) -> tuple[int, Attempt]:
            return index, await attempt_episodes(
                self.domain, self.harness, self.limits, task, self.seed
            )

        for done in asyncio.as_completed([one(i, t) for i, t in enumerate(tasks)]):
            yield await done
