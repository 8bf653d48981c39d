"""One proposal's episodes: the solve, then (when it passed) the no-tool guess, up to k tries.

A model guesser gets `GuessTries.tries` tries: the first at the run's sampling, the rest
sampled at `temperature` with seeds run seed + i, stopping at the first right answer (one is
enough to show the shortcut). A scripted guesser is deterministic: it takes one.

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

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core import Task, Trajectory
from longhorizon.harness import EpisodeRunner, HarnessConfig, Limits
from longhorizon.harness.agent import Agent
from longhorizon.synthesis.acceptance import answer_right
from longhorizon.synthesis.types import Domain
from longhorizon.tools.base import ToolSet

__all__ = ["Attempt", "AttemptRunner", "GuessTries", "LocalAttempts", "attempt_episodes"]


class GuessTries(BaseModel):
    """How hard the no-tool guesser tries before a task counts as needing its tools."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tries: int = Field(default=1, ge=1, description="no-tool tries of a model guesser")
    temperature: float = Field(default=0.7, gt=0, description="sampling of tries after the first")


def guess_role(i: int) -> str:
    """The KAG role (and trajectory id suffix) of try i (0-based): guess, guess-2, ..."""
    return "guess" if i == 0 else f"guess-{i + 1}"


@dataclass(frozen=True)
class Attempt:
    """A proposal's solve and its no-tool guesses, in order (empty: not tried); only the last
    can be right, as tries stop at the first right answer."""

    solve: Trajectory
    guesses: tuple[Trajectory, ...] = ()

    @property
    def guess(self) -> Trajectory | None:
        """The deciding guess: the right one if any was, else the last (None: not tried)."""
        return self.guesses[-1] if self.guesses else None

    def trajectories(self) -> list[tuple[Trajectory, str]]:
        """(trajectory, KAG role) pairs, solve first."""
        return [(self.solve, "solve")] + [(g, guess_role(i)) for i, g in enumerate(self.guesses)]


class AttemptRunner(Protocol):
    """Runs the episodes of a batch of proposals and yields (index in batch, attempt) as each
    finishes; the caller decides in proposal order once the batch is in."""

    def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]: ...


async def attempt_episodes(
    domain: Domain,
    harness: HarnessConfig,
    limits: Limits,
    task: Task,
    seed: int,
    guessing: GuessTries = GuessTries(),
) -> Attempt:
    """Solve `task`; when the solve passed and the task has tools, also try it without tools
    (`guessing.tries` times at most, stopping at the first right answer)."""
    run = EpisodeRun(domain, harness, limits, task, seed)
    solve = await run("solve", domain.solver, domain.toolset)
    # A task without tools (a reasoning task) has nothing to shortcut: the solver itself
    # answers without tools, so a right no-tool guess says nothing about the task.
    if not (solve.passed and domain.guesser is not None and task.protocol.tools):
        return Attempt(solve)
    guesses: list[Trajectory] = []
    for i in range(guessing.tries):
        tried = harness
        if i > 0:  # later tries sample (seed + i), or a greedy guesser would repeat the first
            sampled = harness.sampling.model_copy(update={"temperature": guessing.temperature})
            tried = harness.model_copy(update={"sampling": sampled})
        run = EpisodeRun(domain, tried, limits, task, seed + i)
        guesses.append(await run(guess_role(i), domain.guesser, _no_tools))
        if answer_right(guesses[-1], domain.process_verifiers):
            break
    return Attempt(solve, tuple(guesses))


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

    def __init__(
        self, domain: Domain, harness: HarnessConfig, seed: int, guessing: GuessTries = GuessTries()
    ) -> None:
        self.domain, self.harness, self.seed, self.guessing = domain, harness, seed, guessing
        self.limits = Limits.from_config(harness)

    async def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]:
        async def one(index: int, task: Task) -> tuple[int, Attempt]:
            return index, await attempt_episodes(
                self.domain, self.harness, self.limits, task, self.seed, self.guessing
            )

        for done in asyncio.as_completed([one(i, t) for i, t in enumerate(tasks)]):
            yield await done
