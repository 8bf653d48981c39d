"""The instruction domain as one `DomainSpec`: composed IFEval instructions and long-context
multiple choice at an `InstructionLevel`; no tools, so no guesser and no corpus."""

from __future__ import annotations

import math
from pathlib import Path

from longhorizon.core.task import Task
from longhorizon.domains.instruction.expert import expert_script
from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.domains.instruction.propose import InstructionProposer, propose_tasks
from longhorizon.domains.instruction.tasks import DOMAIN, instruction_protocol
from longhorizon.domains.instruction.verify import AGGREGATE, VERIFIERS, verify
from longhorizon.domains.spec import DomainSpec, World

__all__ = ["SPEC", "open_world"]

TOKENS_PER_CHAR = 0.4  # SmolLM2's tokenizer on the expert's English answers


def open_world(level: InstructionLevel, seed: int, resource_dir: Path) -> World:
    """Tasks are drawn from seeds alone: the world has no resources to write."""
    del seed, resource_dir

    def heldout(n: int, heldout_seed: int) -> list[Task]:
        return propose_tasks(n, seed=heldout_seed, level=level)

    return World(proposer=InstructionProposer(level), heldout=heldout, expert=expert_script)


def turn_tokens(level: InstructionLevel) -> int:
    """The expert's answer is at most `max_response_chars` long, at <= 0.4 tokens a char
    (235 tokens at 600 chars: results/tiny-six-seed0-199ecb0/turn-lengths.json)."""
    return math.ceil(TOKENS_PER_CHAR * level.max_response_chars)


SPEC: DomainSpec[InstructionLevel] = DomainSpec(
    name=DOMAIN,
    description="IFEval-style composed instructions and long-context multiple choice",
    level=InstructionLevel,
    protocol=instruction_protocol(),
    verdicts=verify,
    verifiers=VERIFIERS,
    summary_verifiers=frozenset({AGGREGATE}),  # "ifeval_all" restates the per-instruction ones
    open_world=open_world,
    heldout_size=200,
    extra_benches=("ifeval",),
    turn_tokens=turn_tokens,
)
