"""The synthesis entry points of the instruction domain: IFEval-style and long-context tasks."""

from __future__ import annotations

import random

from longhorizon.core.task import Task
from longhorizon.domains.instruction.longcontext import propose_longcontext_task
from longhorizon.domains.instruction.tasks import accept_n, propose_instruction_task


def propose_task(seed: int, long_context_share: float = 0.0) -> Task | None:
    """One task for this seed (a long-context one with the given probability), or None."""
    if random.Random(f"variant|{seed}").random() < long_context_share:
        return propose_longcontext_task(seed)
    return propose_instruction_task(seed)


class InstructionProposer:
    """The self-play proposer of this domain (`longhorizon.synthesis.types.Proposer`)."""

    def __init__(self, long_context_share: float = 0.0) -> None:
        self.long_context_share = long_context_share

    def propose(self, rng: random.Random) -> Task | None:
        return propose_task(rng.getrandbits(48), self.long_context_share)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        """Nothing to learn: a rejected seed is simply not proposed again."""
        del task, reasons


def propose_tasks(n: int, seed: int = 0, long_context_share: float = 0.0) -> list[Task]:
    """The first n accepted tasks of a seeded stream; deterministic in (n, seed, share)."""
    return accept_n(lambda s: propose_task(s, long_context_share), n, seed)
