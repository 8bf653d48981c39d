"""The science domain as one `DomainSpec`: its level, its world (a generated reference
handbook written as a corpus), the proposer of seeds and rewrites, the expert, the no-tool
guesser and the held-out split."""

from __future__ import annotations

import hashlib
import json
import random
import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.science.expert import expert_script
from longhorizon.domains.science.families import FAMILIES
from longhorizon.domains.science.handbook import CORPUS_FILE, Handbook
from longhorizon.domains.science.problems import (
    Kind,
    Problem,
    draw_seed,
    harder,
    with_lookup,
    with_python,
)
from longhorizon.domains.science.tasks import (
    DOMAIN,
    PROCESS,
    TOOL_STEPS,
    science_protocol,
    task_from_problem,
)
from longhorizon.domains.science.verify import VERIFIERS, verify
from longhorizon.domains.spec import DomainSpec, World, fixed_turn_tokens
from longhorizon.harness.agent import Script
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.corpus import CorpusIndex

__all__ = [
    "SPEC",
    "ScienceLevel",
    "ScienceProposer",
    "guess_without_tools",
    "heldout_region",
    "propose",
    "propose_tasks",
]

CORPUS_DIR = "handbook"
KINDS: tuple[Kind, ...] = ("seed", "harder", "python", "lookup")
HELDOUT_SHARE = 4  # one seed in 4 is held out
_NUMBER = re.compile(r"=\s*([-+]?\d[\d.]*(?:e[-+]?\d+)?)")
_UNIT = re.compile(r", in (\S+)\.$")


class ScienceLevel(BaseModel):
    """The mix of task kinds and how hard "hard" is; synthesis and the held-out split share it.

    `kind_weights` is the trajectory mix of the two-stage science teacher: seed and harder
    tasks are solved without tools (reasoning traces), python and lookup tasks with them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    materials: int = Field(default=40, ge=5, description="handbook size (plus ~20% variants)")
    kind_weights: tuple[float, float, float, float] = Field(
        default=(1.0, 1.0, 1.0, 1.0), description="relative share of seed, harder, python, lookup"
    )
    hard_steps: int = Field(default=3, ge=1, description="a seed with this many steps is hard")
    symbolic_share: float = Field(default=0.5, ge=0, le=1, description="harder: symbolic answer")
    expert_error_rate: float = Field(default=0.1, ge=0, le=1)

    def tool_share(self) -> float:
        """The share of tool-augmented tasks (python and lookup) in the mix."""
        return sum(self.kind_weights[2:]) / sum(self.kind_weights)


def tool_steps(level: ScienceLevel) -> int:
    return TOOL_STEPS if level.tool_share() > 0 else 0


# ---- proposing ---------------------------------------------------------------------------------


def _rewrite(
    kind: Kind, seed: Problem, rng: random.Random, hb: Handbook, level: ScienceLevel
) -> Problem | None:
    if kind == "seed":
        return seed
    if kind == "harder":
        return harder(seed, rng, hb, level.hard_steps, level.symbolic_share)
    if kind == "python":
        return with_python(seed, rng)
    return with_lookup(seed)


def heldout_region(problem: Problem) -> bool:
    """Whether a seed belongs to the held-out split: a quarter of all seeds, by a hash of the
    family, material and values. Synthesis never proposes them (nor their rewrites), so the
    split is disjoint by construction, not by the luck of seeds (value grids are small)."""
    material = problem.material.id if problem.material else ""
    key = json.dumps([problem.family, material, sorted(problem.values.items())])
    return hashlib.sha256(key.encode()).digest()[0] % HELDOUT_SHARE == 0


def propose(
    kind: Kind,
    rng: random.Random,
    hb: Handbook,
    level: ScienceLevel,
    seed: int | None = None,
    heldout: bool = False,
) -> tuple[Task, Task] | None:
    """(task, its seed's task) of `kind`, from a family that the rewrite applies to; None
    when the draw fails or its seed is in the other split."""
    names = sorted(FAMILIES)
    if kind == "lookup":
        names = [n for n in names if any(v.material for v in FAMILIES[n].variables)]
    family = FAMILIES[rng.choice(names)]
    base = draw_seed(family, rng, hb)
    if base is None:
        return None
    problem = _rewrite(kind, base, rng, hb, level)
    if problem is None:
        return None
    seed_task = task_from_problem(base, seed=seed)
    task = task_from_problem(problem, seed_task.id, seed=seed)
    # A fully symbolic statement states no values: its split goes by its text.
    by_text = problem.symbolic and not problem.keep
    region = _text_region(task.instruction) if by_text else heldout_region(base)
    return (task, seed_task) if region == heldout else None


def _text_region(text: str) -> bool:
    return hashlib.sha256(text.encode()).digest()[0] % HELDOUT_SHARE == 0


class ScienceProposer:
    """Seeds and their rewrites, by the level's kind weights; writes each proposal's subgraph
    (the seed, its laws, constants and material, and the rewrite's provenance) to the KAG
    once the world is loaded into one."""

    def __init__(self, handbook: Handbook, level: ScienceLevel, seed: int = 0) -> None:
        self.handbook = handbook
        self.level = level
        self.seed = seed
        self.kag: KnowledgeActionGraph | None = None

    def propose(self, rng: random.Random) -> Task | None:
        kind = rng.choices(KINDS, weights=self.level.kind_weights)[0]
        found = propose(kind, rng, self.handbook, self.level, self.seed)
        if found is None:
            return None
        task, seed_task = found
        if self.kag is not None:
            record_subgraph(self.kag, task, seed_task)
        return task

    def feedback(self, task: Task, reasons: list[str]) -> None:
        """Nothing to learn: a rejected draw is simply not proposed again."""
        del task, reasons


def propose_tasks(
    handbook: Handbook,
    n: int,
    level: ScienceLevel,
    seed: int = 0,
    heldout: bool = True,
    attempts: int = 60,
) -> list[Task]:
    """n distinct tasks whose kinds go round the kinds with weight > 0, so every kind gets
    its share; held-out seeds by default (see `heldout_region`). Deterministic in (handbook,
    level, seed, heldout); a shorter list is a prefix of a longer one."""
    kinds = [k for k, w in zip(KINDS, level.kind_weights, strict=True) if w > 0]
    rng = random.Random(f"science-tasks:{seed}")
    tasks: dict[str, Task] = {}
    for i in range(n):
        for _ in range(attempts):
            found = propose(kinds[i % len(kinds)], rng, handbook, level, seed, heldout)
            if found is not None and found[0].id not in tasks:
                tasks[found[0].id] = found[0]
                break
    return list(tasks.values())


# ---- the KAG -----------------------------------------------------------------------------------


def load_into_kag(handbook: Handbook, kag: KnowledgeActionGraph) -> None:
    """Handbook pages as evidence nodes; each family's laws as fact nodes."""
    kag.add_nodes(
        Node(id=d.id, domain=DOMAIN, type=NodeType.EVIDENCE, label=d.title)
        for d in handbook.documents()
    )
    kag.add_nodes(
        Node(
            id=f"law:{f.name}:{i}",
            domain=DOMAIN,
            type=NodeType.FACT,
            label=law,
            payload={"family": f.name, "topic": f.topic},
        )
        for f in FAMILIES.values()
        for i, law in enumerate(f.laws)
    )


def record_subgraph(kag: KnowledgeActionGraph, task: Task, seed_task: Task) -> None:
    """The seed as a node with its subgraph, its dependencies, and the rewrite's edge."""
    sub = seed_task.metadata["subgraph"]
    seed_node = f"seed:{seed_task.id}"
    kag.add_nodes(
        [Node(id=seed_node, domain=DOMAIN, type=NodeType.STATE, label=sub["family"], payload=sub)]
    )
    family = FAMILIES[sub["family"]]
    edges = [
        Edge(src=seed_node, dst=f"law:{family.name}:{i}", type=EdgeType.DEPENDENCY, domain=DOMAIN)
        for i in range(len(family.laws))
    ]
    edges += [
        Edge(src=seed_node, dst=f"const-{c}", type=EdgeType.DEPENDENCY, domain=DOMAIN)
        for c in sub["constants"]
    ]
    if sub["material"]:
        edges.append(
            Edge(src=seed_node, dst=sub["material"], type=EdgeType.DEPENDENCY, domain=DOMAIN)
        )
    rewrite = {k: task.provenance.extra[k] for k in ("rewrite", "unchanged", "composed")}
    edges.append(
        Edge(src=task.id, dst=seed_node, type=EdgeType.PRODUCTION, domain=DOMAIN, payload=rewrite)
    )
    kag.add_edges(edges)


# ---- the world ---------------------------------------------------------------------------------


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: the last stated number, in the asked unit."""
    question = next((m.content or "" for m in messages if m.role == "user"), "")
    numbers = _NUMBER.findall(question)
    unit = _UNIT.search(question)
    value = numbers[-1] if numbers else "0"
    return f"<answer>{value}{' ' + unit.group(1) if unit else ''}</answer>"


@lru_cache(maxsize=4)
def handbook(materials: int, seed: int) -> Handbook:
    return Handbook.generate(materials, seed)


def open_world(level: ScienceLevel, seed: int, resource_dir: Path) -> World:
    """The handbook of `level.materials` materials, written under `resource_dir`."""
    book = handbook(level.materials, seed)
    index = CorpusIndex.open(book.write(resource_dir / CORPUS_DIR))
    proposer = ScienceProposer(book, level, seed)

    def expert(task: Task) -> Script:
        return expert_script(task, error_rate=level.expert_error_rate, seed=seed)

    def heldout(n: int, heldout_seed: int) -> list[Task]:
        return propose_tasks(book, n, level, seed=heldout_seed)

    def load(kag: KnowledgeActionGraph) -> None:
        load_into_kag(book, kag)
        proposer.kag = kag

    return World(
        proposer=proposer,
        heldout=heldout,
        expert=expert,
        guesser=guess_without_tools,
        resources={"corpus_index": index},
        load_kag=load,
        info={"materials": level.materials, "seed": seed},
    )


def corpus_files(synth_out: Path) -> list[Path]:
    return [synth_out / CORPUS_DIR / CORPUS_FILE]


SPEC: DomainSpec[ScienceLevel] = DomainSpec(
    name=DOMAIN,
    description="physics and chemistry problems with units: seeds, harder and "
    "interaction-enriched rewrites (python, handbook lookup)",
    level=ScienceLevel,
    protocol=science_protocol(),
    verdicts=verify,
    verifiers=VERIFIERS,
    open_world=open_world,
    process_verifiers=frozenset({PROCESS}),
    min_tool_steps=0,
    heldout_size=100,
    corpus=corpus_files,
    # physics olympiad questions (text-only subset); FrontierScience (olympiad and research,
    # the judge where answers cannot be matched)
    extra_benches=("hipho", "frontierscience"),
    tool_steps=tool_steps,
    turn_tokens=fixed_turn_tokens(489),  # results/tiny-six-seed0-199ecb0/turn-lengths.json
)
