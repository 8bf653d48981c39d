"""Multi-hop questions from constrained walks: the proposer of the search domain.

A walk p_0 -> ... -> p_n over labelled links becomes a question about p_n in which only the
start may be named (or is itself described); every hop is phrased through the relation it
follows ("the founder of ...", "the company headquartered in ..."). A chain is rejected when
any hop could resolve to more than one entity, when the start has no unique description and
may not be named, or when the text would leak a chain entity's name or the answer.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any

from longhorizon.core.messages import Message
from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.domains.search.describe import describe
from longhorizon.domains.search.encyclopedia import Encyclopedia
from longhorizon.domains.search.graph import EdgeWeight, LinkGraph, Walk, WalkRules, random_walk
from longhorizon.domains.search.schema import (
    ATTRIBUTES,
    NAME_QUESTIONS,
    format_value,
    hop_phrase,
    split_label,
)

DOMAIN = "search"
GENERATOR = "longhorizon.domains.search.propose_task"
SEARCH_TOOLS: tuple[str, ...] = ("search", "visit", "python")
SYSTEM_PROMPT = (
    "You are a research agent with a document collection. Use the search tool to find "
    "documents and the visit tool to read them; follow the facts page by page until you can "
    "answer. Do not guess: every fact you use must come from a page you have read. Give the "
    "final answer, as short as possible, inside <answer></answer>."
)
_CANDIDATE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+|[A-Z][\w'-]*(?: [A-Z][\w'-]*)*)")
NAME_SHARE = 0.3  # share of questions that ask for the final entity's name
DEFAULT_MAX_TURNS = 30


def tool_steps(hops: int) -> int:
    """Tool steps a walk of `hops` hops needs on the expert's path (the one SFT teaches): a
    search and a visit for each of its hops + 1 pages, one call a turn."""
    return 2 * (hops + 1)


def search_protocol(max_turns: int = DEFAULT_MAX_TURNS) -> Protocol:
    return Protocol(
        tools=SEARCH_TOOLS, budgets=Budgets(max_turns=max_turns), system_prompt=SYSTEM_PROMPT
    )


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: answer with the last name or number the question itself contains."""
    question = next((m.content or "" for m in messages if m.role == "user"), "")
    found = _CANDIDATE.findall(question)
    return f"<answer>{found[-1] if found else 'unknown'}</answer>"


# ---- ambiguity ---------------------------------------------------------------------------------


def hop_is_unambiguous(encyclopedia: Encyclopedia, page: str, label: str | None) -> bool:
    """A forward hop names one entity; an inverse hop only if `page` has exactly one subject."""
    if label is None:
        return False
    relation, inverse = split_label(label)
    return not inverse or len(encyclopedia.subjects(relation, page)) == 1


def question_hop_weight(encyclopedia: Encyclopedia, ambiguous: float = 0.05) -> EdgeWeight:
    """The selector: phrasable, unambiguous hops first; ambiguous ones rarely (then rejected),
    links without a relation never."""

    def weight(page: str, target: str, relation: str | None) -> float:
        if relation is None:
            return 0.0
        return 1.0 if hop_is_unambiguous(encyclopedia, page, relation) else ambiguous

    return weight


# ---- the question ------------------------------------------------------------------------------


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether `phrase` is in `text` as whole words, in any case."""
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text, flags=re.IGNORECASE) is not None


def _ask(encyclopedia: Encyclopedia, page: str, rng: random.Random) -> tuple[str, str, str]:
    """(attribute or "name", answer, question template) for the final entity."""
    entity = encyclopedia.by_id[page]
    specs = [s for s in ATTRIBUTES[entity.kind] if s.questions and s.name in entity.attributes]
    if not specs or rng.random() < NAME_SHARE:
        return "name", entity.name, rng.choice(NAME_QUESTIONS)
    spec = rng.choice(specs)
    value = format_value(spec.name, entity.attributes[spec.name])
    return spec.name, value, rng.choice(spec.questions)


def _start(
    encyclopedia: Encyclopedia, walk: Walk, rng: random.Random, named_rate: float
) -> tuple[str, bool]:
    """(text, named): the start's description, or its name when none is unique."""
    if rng.random() >= named_rate:
        found = describe(encyclopedia, walk.pages[0], rng, avoid=walk.pages)
        if found is not None:
            return found[0], False
    return encyclopedia.name(walk.pages[0]), True


def task_id(walk: Walk, question: str) -> str:
    key = json.dumps([walk.pages, question]).encode()
    return f"search-{hashlib.sha256(key).hexdigest()[:12]}"


def task_from_walk(
    encyclopedia: Encyclopedia,
    walk: Walk,
    rng: random.Random,
    *,
    seed: int | None = None,
    named_start_rate: float = 0.3,
) -> Task | None:
    """The walk as a multi-hop question, or None when it would be ambiguous or leak."""
    if walk.hops < 1 or not all(
        hop_is_unambiguous(encyclopedia, page, label)
        for page, label in zip(walk.pages, walk.relations, strict=False)
    ):
        return None
    start, named = _start(encyclopedia, walk, rng, named_start_rate)
    description = start
    for label in walk.relations:
        description = hop_phrase(label, description)  # type: ignore[arg-type]
    ask, answer, template = _ask(encyclopedia, walk.pages[-1], rng)
    question = template.format(x=description, X=description[0].upper() + description[1:])
    hidden = [encyclopedia.name(p) for p in walk.pages[1:]] + [answer]
    if any(contains_phrase(question, h) for h in hidden):
        return None
    return walk_task(
        walk,
        question,
        answer,
        seed,
        extra={},
        metadata={
            "start": start,
            "start_named": named,
            "ask": ask,
            "encyclopedia_seed": encyclopedia.seed,
        },
    )


def walk_task(
    walk: Walk,
    question: str,
    answer: str,
    seed: int | None,
    extra: dict[str, Any],
    metadata: dict[str, Any],
) -> Task:
    """The search task of a walk: exact-match answer, the walk's pages as evidence (and its
    path verifier), turns for its tool steps; `extra` and `metadata` add the proposer's own."""
    return Task(
        id=task_id(walk, question),
        domain=DOMAIN,
        instruction=question,
        answer=answer,
        evidence=list(walk.pages),
        verifiers=[
            VerifierSpec(name="exact_match"),
            VerifierSpec(name="evidence_path", params={"pages": list(walk.pages)}),
        ],
        protocol=search_protocol(max(DEFAULT_MAX_TURNS, tool_steps(walk.hops) + 1)),
        provenance=Provenance(
            source="synthetic",
            generator=GENERATOR,
            seed=seed,
            extra={"walk": list(walk.pages), "relations": list(walk.relations), **extra},
        ),
        metadata={"hops": walk.hops, "tool_steps": tool_steps(walk.hops), **metadata},
    )


# ---- proposing ---------------------------------------------------------------------------------


def propose_task(
    encyclopedia: Encyclopedia,
    rng: random.Random,
    hops: int | tuple[int, int] = (2, 4),
    *,
    seed: int | None = None,
    rules: WalkRules | None = None,
    named_start_rate: float = 0.3,
    graph: LinkGraph | None = None,
) -> Task | None:
    """One walk of `hops` hops (or a random count in the inclusive range) on `graph` (the
    encyclopedia's own by default) made a question."""
    n = hops if isinstance(hops, int) else rng.randint(*hops)
    weight = question_hop_weight(encyclopedia)
    walk = random_walk(graph or encyclopedia.graph(), rng, n, rules=rules, weight=weight)
    if walk is None:
        return None
    return task_from_walk(encyclopedia, walk, rng, seed=seed, named_start_rate=named_start_rate)


def propose_tasks(
    encyclopedia: Encyclopedia,
    n: int,
    *,
    seed: int = 0,
    hops: int | tuple[int, int] = (2, 4),
    max_attempts: int | None = None,
) -> list[Task]:
    """Up to n distinct accepted tasks, deterministic in (encyclopedia, seed)."""
    rng = random.Random(f"tasks:{seed}")
    tasks: dict[str, Task] = {}
    for _ in range(max_attempts or 50 * n):
        if len(tasks) >= n:
            break
        task = propose_task(encyclopedia, rng, hops, seed=seed)
        if task is not None:
            tasks.setdefault(task.id, task)
    return list(tasks.values())


def propose_stratified(
    encyclopedia: Encyclopedia,
    n: int,
    levels: list[int],
    *,
    seed: int = 0,
    attempts: int = 50,
) -> list[Task]:
    """n distinct tasks whose hop counts go round `levels` (task i has `levels[i % L]` hops),
    so every level gets n / L tasks; deterministic in (encyclopedia, seed), and a shorter
    list is a prefix of a longer one. A slot whose level finds no task in `attempts` walks
    is left out."""
    rng = random.Random(f"tasks:{seed}")
    tasks: dict[str, Task] = {}
    for i in range(n):
        for _ in range(attempts):
            task = propose_task(encyclopedia, rng, levels[i % len(levels)], seed=seed)
            if task is not None and task.id not in tasks:
                tasks[task.id] = task
                break
    return list(tasks.values())
