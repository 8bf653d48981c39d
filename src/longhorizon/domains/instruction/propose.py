"""The synthesis entry points of the instruction domain: IFEval-style and long-context tasks."""

from __future__ import annotations

import random

from longhorizon.core.task import Task
from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.domains.instruction.longcontext import propose_longcontext_task
from longhorizon.domains.instruction.tasks import accept_n, propose_instruction_task


def propose_task(seed: int, level: InstructionLevel | None = None) -> Task | None:
    """One task for this seed (a long-context one with the level's probability), or None."""
    level = level or InstructionLevel()
    if random.Random(f"variant|{seed}").random() < level.long_context_share:
        return propose_longcontext_task(seed)
    return propose_instruction_task(
        seed, level.max_instructions, level.max_response_chars, level.informative_only
    )


class InstructionProposer:
    """The self-play proposer of this domain (`longhorizon.synthesis.types.Proposer`)."""

    def __init__(self, level: InstructionLevel | None = None) -> None:
        self.level = level or InstructionLevel()

    def propose(self, rng: random.Random) -> Task | None:
        return propose_task(rng.getrandbits(48), self.level)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        """Nothing to learn: a rejected seed is simply not proposed again."""
        del task, reasons


def propose_tasks(n: int, seed: int = 0, level: InstructionLevel | None = None) -> list[Task]:
    """The first n accepted tasks of a seeded stream; deterministic in (n, seed, level)."""
    return accept_n(lambda s: propose_task(s, level), n, seed)
