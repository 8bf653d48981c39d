"""The step loop OPD and GRPO share: train a step, log it, checkpoint, repeat from the resumed
step. Each trainer brings its step, its console line and its checkpoint call. Streaming
trainers overlap a step's update with the next step's rollouts (`update_overlapping`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from rich.console import Console

from longhorizon.training.checkpoint import TrainerState
from longhorizon.training.metrics import MetricsLogger

__all__ = ["StepLoop", "SteppedTrainer", "no_update", "run_steps", "update_overlapping"]

T = TypeVar("T")


class SteppedTrainer(Protocol):
    state: TrainerState  # advanced here after every step

    @property
    def console(self) -> Console: ...

    async def train_step(self, step: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StepLoop:
    steps: int
    log_every: int
    logger: MetricsLogger
    line: Callable[[dict[str, Any]], str]  # the step's console line (printed when logged)
    checkpoint: Callable[[TrainerState], Path | None]  # after each step: a path when it saved


async def run_steps(trainer: SteppedTrainer, loop: StepLoop) -> None:
    """Steps `trainer.state.step` .. `loop.steps - 1`, each logged and then checkpointed."""
    for step in range(trainer.state.step, loop.steps):
        record = await trainer.train_step(step)
        trainer.state = trainer.state.model_copy(update={"step": step + 1})
        done = step + 1
        echo = done % loop.log_every == 0 or done == loop.steps
        loop.logger.log(record, echo=echo)
        if echo:
            trainer.console.print(f"       {loop.line(record)}")
        path = loop.checkpoint(trainer.state)
        if path is not None:
            trainer.console.print(f"checkpoint {path}")


def no_update() -> dict[str, Any]:
    """A step's record when it had nothing to train on (the lr schedule counts updates)."""
    return {"loss": None, "domains": {}}


async def update_overlapping(
    update: Callable[[], dict[str, Any]],
    upcoming: asyncio.Task[T] | None,
    threaded: bool,
    clock: list[float],
) -> tuple[dict[str, Any], T | None]:
    """Run `update` (in a worker thread when `threaded`, leaving the event loop to `upcoming`,
    the next step's rollouts), then wait for `upcoming`. `clock` gets the update's end and,
    when threaded, the end of the wait. A failed update cancels `upcoming`."""
    try:
        record = await asyncio.to_thread(update) if threaded else update()
        clock.append(time.perf_counter())
        following = await upcoming if upcoming is not None else None
        if threaded:
            clock.append(time.perf_counter())
        return record, following
    finally:
        if upcoming is not None:
            upcoming.cancel()  # only when the update failed: it is done otherwise
