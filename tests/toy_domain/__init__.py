"""A third domain defined entirely in the test folder: "add two numbers", no tools.

It is the proof that a domain is one folder: this spec, registered with
`longhorizon.domains.registry.register(SPEC)`, goes through synthesis, SFT, teachers, OPD,
held-out evaluation and the report with no edit to any package.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.messages import Message
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.spec import HELDOUT_SEED, DomainSpec, World
from longhorizon.harness.agent import Script

__all__ = ["SPEC", "AdditionLevel", "propose", "verify"]

NAME = "addition"
SUM = "sum"  # the one verifier: the final answer is the sum, as an integer
PROTOCOL = Protocol(budgets=Budgets(max_turns=2, max_response_tokens=32, max_context_tokens=512))


class AdditionLevel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_operand: int = Field(default=99, ge=1)


def propose(seed: int, level: AdditionLevel) -> Task:
    """The task of one seed: a + b with both operands in [0, max_operand]."""
    rng = random.Random(f"{NAME}|{seed}")
    a, b = rng.randint(0, level.max_operand), rng.randint(0, level.max_operand)
    question = f"What is {a} + {b}? Give the sum inside <answer></answer>."
    return Task(
        id=f"{NAME}-{hashlib.sha256(question.encode()).hexdigest()[:12]}",
        domain=NAME,
        instruction=question,
        answer=str(a + b),
        verifiers=[VerifierSpec(name=SUM)],
        protocol=PROTOCOL,
        metadata={"a": a, "b": b},
    )


class Proposer:
    def __init__(self, level: AdditionLevel) -> None:
        self.level = level

    def propose(self, rng: random.Random) -> Task | None:
        return propose(rng.randrange(HELDOUT_SEED), self.level)  # below the held-out seeds

    def feedback(self, task: Task, reasons: list[str]) -> None:
        del task, reasons


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The sum verdict (the spec has already refused tasks naming other verifiers)."""
    answer = (trajectory.final_answer or "").strip()
    passed = answer == task.answer
    return [Verdict(verifier=SUM, passed=passed, score=float(passed), details={"answer": answer})]


def expert(task: Task) -> Script:
    def script(messages: list[Message]) -> str:
        del messages
        return f"<answer>{task.answer}</answer>"

    return script


def open_world(level: AdditionLevel, seed: int, resource_dir: Path) -> World:
    del seed, resource_dir

    def heldout(n: int, heldout_seed: int) -> list[Task]:
        tasks: dict[str, Task] = {}
        offset = 0
        while len(tasks) < n:
            task = propose(heldout_seed + offset, level)
            tasks.setdefault(task.id, task)
            offset += 1
        return list(tasks.values())

    return World(proposer=Proposer(level), heldout=heldout, expert=expert)


SPEC: DomainSpec[AdditionLevel] = DomainSpec(
    name=NAME,
    description="add two integers",
    level=AdditionLevel,
    protocol=PROTOCOL,
    verdicts=verify,
    verifiers=frozenset({SUM}),
    open_world=open_world,
    heldout_size=20,
)
