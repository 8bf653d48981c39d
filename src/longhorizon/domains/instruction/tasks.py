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
from longhorizon.domains.instruction.level import MAX_RESPONSE_CHARS
from longhorizon.domains.instruction.text import Infeasible
from longhorizon.domains.instruction.verify import IFEVAL, strict_passes

DOMAIN = "instruction"
GENERATOR = "longhorizon.domains.instruction.propose_instruction_task"
# Sized for ~1k-token responses: the expert stays under MAX_RESPONSE_CHARS (~2k tokens).
INSTRUCTION_BUDGETS = Budgets(max_turns=2, max_response_tokens=2048, max_context_tokens=4096)


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


def propose_instruction_task(
    seed: int,
    max_instructions: int = 4,
    max_response_chars: int = MAX_RESPONSE_CHARS,
    informative_only: bool = False,
) -> Task | None:
    """A task for this seed, or None when the expert cannot satisfy the draw within bounds
    (or, with `informative_only`, when an answer that ignores the instructions passes)."""
    composed = compose(random.Random(f"instruction|{seed}"), max_instructions=max_instructions)
    task = build_task(composed, seed)
    try:
        response = expert_response(task)
    except Infeasible:
        return None
    if len(response) > max_response_chars or not strict_passes(task, response):
        return None
    if informative_only and strict_passes(task, plain_answer(task)):
        return None
    return task


def plain_answer(task: Task) -> str:
    """The expert's answer to the bare request: what a model that ignores the instructions says.

    (An empty answer needs no check: the IFEval checkers fail every empty response.)
    """
    meta = task.metadata
    bare = ComposedPrompt(meta["topic"], meta["kind"], meta["request"], ())
    return expert_response(build_task(bare, meta["expert_seed"]))


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
