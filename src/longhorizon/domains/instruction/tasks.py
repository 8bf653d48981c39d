"""Instruction-following tasks: compose a prompt, let the expert answer it, keep it if it passes.

A composed prompt becomes a task only when the scripted expert's response passes every
strict check and fits the response budget; otherwise the draw is dropped and the next
seed is tried. So the expert is correct on every accepted task by construction.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Finalisation, Protocol, Task, VerifierSpec
from longhorizon.domains.instruction.constraints import ComposedPrompt, compose
from longhorizon.domains.instruction.expert import expert_response
from longhorizon.domains.instruction.text import Infeasible
from longhorizon.domains.instruction.verify import IFEVAL, strict_passes

DOMAIN = "instruction"
GENERATOR = "longhorizon.domains.instruction.propose_instruction_task"
# Sized for ~1k-token responses: the expert stays under MAX_RESPONSE_CHARS (~2k tokens).
INSTRUCTION_BUDGETS = Budgets(max_turns=2, max_response_tokens=2048, max_context_tokens=4096)
MAX_RESPONSE_CHARS = 6000


def instruction_protocol() -> Protocol:
    """No tools; the whole last message is the answer."""
    return Protocol(budgets=INSTRUCTION_BUDGETS, finalisation=Finalisation(kind="last_message"))


def task_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def build_task(composed: ComposedPrompt, seed: int) -> Task:
    """The task of a composed prompt (not yet checked against the expert)."""
    params = {"instruction_id_list": composed.instruction_id_list, "kwargs": composed.kwargs_list}
    return Task(
        id=task_id("if", f"{seed}\n{composed.prompt}"),
        domain=DOMAIN,
        instruction=composed.prompt,
        answer=None,
        verifiers=[VerifierSpec(name=IFEVAL, params=params)],
        protocol=instruction_protocol(),
        provenance=Provenance(source="synthetic", generator=GENERATOR, seed=seed),
        metadata={
            "variant": "ifeval",
            "topic": composed.topic,
            "kind": composed.kind,
            "request": composed.request,
            "language": composed.language,
            "expert_seed": seed,
        },
    )


def propose_instruction_task(seed: int) -> Task | None:
    """A task for this seed, or None when the expert cannot satisfy the draw."""
    task = build_task(compose(random.Random(f"instruction|{seed}")), seed)
    try:
        response = expert_response(task)
    except Infeasible:
        return None
    if len(response) > MAX_RESPONSE_CHARS or not strict_passes(task, response):
        return None
    return task


def accept_n(propose: Callable[[int], Task | None], n: int, seed: int) -> list[Task]:
    """The first n accepted tasks over a seeded stream of attempt seeds."""
    stream = random.Random(seed)
    tasks: list[Task] = []
    while len(tasks) < n:
        task = propose(stream.getrandbits(48))
        if task is not None:
            tasks.append(task)
    return tasks


def propose_instruction_tasks(n: int, seed: int = 0) -> list[Task]:
    return accept_n(propose_instruction_task, n, seed)
