"""The molecules domain as one `DomainSpec`: a seeded fragment-enumerated pool, its KAG
(molecule, property, constraint and tool nodes), the proposer, the scripted expert, the
no-tool guesser and a held-out split over held-out molecules only."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from pathlib import Path

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.molecules.constraints import PATTERNS, PROPERTY_TEXT, Constraint
from longhorizon.domains.molecules.expert import expert_script
from longhorizon.domains.molecules.level import KINDS, MoleculesLevel
from longhorizon.domains.molecules.pool import Pool, build_pool
from longhorizon.domains.molecules.tasks import DOMAIN, EXAMINED, propose_task, protocol
from longhorizon.domains.molecules.verify import VERIFIERS, verify
from longhorizon.domains.spec import DomainSpec, World
from longhorizon.harness.agent import Script
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.chem import RULES, molecule_ref, properties

__all__ = ["SPEC", "MoleculesProposer", "guess_without_tools", "heldout_tasks", "load_into_kag"]

MIN_TOOL_STEPS = 2  # a pair task's two proxy calls: anything shorter looked at no molecule
_LISTED = re.compile(r"^Molecules:\n(.*?)(?:\n\n|\Z)", re.S | re.M)
_PAIR = re.compile(r"^Molecule ([AB]): (\S+)$", re.M)
# tool -> the properties its observations state
TOOL_PROPERTIES = {
    "descriptors": tuple(PROPERTY_TEXT),
    "rule_filter": ("MW", "logP", "HBD", "HBA", "RotB", "TPSA"),
    "affinity_proxy": ("affinity",),
    "similarity": ("tanimoto",),
    "substructure": ("substructure_match",),
    "canonicalize": ("canonical_smiles",),
}


class MoleculesProposer:
    """Filter, rank and pair tasks over the training part of the pool.

    Nothing is learnt from feedback: a rejected draw is not proposed again (the KAG keeps
    its id), and the dials (constraints, set size) stay as the level sets them.
    """

    def __init__(self, pool: Pool, level: MoleculesLevel, seed: int = 0) -> None:
        self.pool, self.level, self.seed = pool, level, seed

    def propose(self, rng: random.Random) -> Task | None:
        return propose_task(self.pool, rng, self.level, seed=self.seed)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        del task, reasons


def heldout_tasks(pool: Pool, level: MoleculesLevel, n: int, seed: int) -> list[Task]:
    """n tasks over held-out molecules only, kinds in turn (filter, rank, pair); the same
    seed gives the same tasks and a shorter list is a prefix of a longer one."""
    rng = random.Random(f"heldout:{seed}")
    tasks: dict[str, Task] = {}
    for i in range(n):
        for _ in range(50):
            task = propose_task(pool, rng, level, kind=KINDS[i % 3], heldout=True, seed=seed)
            if task is not None and task.id not in tasks:
                tasks[task.id] = task
                break
    return list(tasks.values())


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: every listed molecule (filter), the first three as listed (rank),
    or for a pair a coin flip read off the question's hash (so tasks that survive the
    shortcut rule are not biased towards A or B)."""
    question = next((m.content or "" for m in messages if m.role == "user"), "")
    pair = dict(_PAIR.findall(question))
    if pair:
        coin = hashlib.sha256(question.encode()).digest()[0] % 2
        return f"<answer>{pair['AB'[coin]]}</answer>"
    found = _LISTED.search(question)
    listed = found.group(1).split("\n") if found else []
    chosen = listed[:3] if question.startswith("Rank") else listed
    return "<answer>\n" + "\n".join(chosen) + "\n</answer>"


# ---- the KAG -----------------------------------------------------------------------------------


def _constraints() -> list[tuple[str, Constraint | None, tuple[str, ...], str]]:
    """(node id, constraint or None for a threshold family, properties, checking tool)."""
    out: list[tuple[str, Constraint | None, tuple[str, ...], str]] = [
        (f"threshold:{p}", None, (p,), "descriptors") for p in PROPERTY_TEXT
    ]
    out += [
        (f"rule:{r}", Constraint(kind="rule", rule=r), tuple(c[0] for c in RULES[r]), "rule_filter")
        for r in RULES
    ]
    out += [
        (f"substructure:{n}", Constraint(kind="substructure", pattern=n), (), "substructure")
        for n in PATTERNS
    ]
    return out


def _kag_nodes(pool: Pool) -> Iterator[Node]:
    for smiles in pool.smiles:
        payload = {"smiles": smiles, "scaffold": pool.scaffold[smiles], **properties(smiles)}
        yield Node(
            id=molecule_ref(smiles),
            domain=DOMAIN,
            type=NodeType.ENTITY,
            label=smiles,
            payload=payload | {"heldout": smiles in set(pool.heldout)},
        )
    props = {p for ps in TOOL_PROPERTIES.values() for p in ps}
    yield from (Node(id=f"property:{p}", domain=DOMAIN, type=NodeType.FACT, label=p) for p in props)
    yield from (
        Node(id=f"tool:{t}", domain=DOMAIN, type=NodeType.TOOL, label=t) for t in TOOL_PROPERTIES
    )
    for node_id, _, _, _ in _constraints():
        yield Node(id=node_id, domain=DOMAIN, type=NodeType.CONSTRAINT, label=node_id)


def _kag_edges(pool: Pool) -> Iterator[Edge]:
    def edge(src: str, dst: str, kind: EdgeType) -> Edge:
        return Edge(src=src, dst=dst, type=kind, domain=DOMAIN)

    for tool_name, props in TOOL_PROPERTIES.items():
        yield from (edge(f"tool:{tool_name}", f"property:{p}", EdgeType.PRODUCTION) for p in props)
    for node_id, constraint, props, tool_name in _constraints():
        yield edge(node_id, f"tool:{tool_name}", EdgeType.DEPENDENCY)
        yield from (edge(node_id, f"property:{p}", EdgeType.DEPENDENCY) for p in props)
        if constraint is not None:  # molecules that satisfy it support it
            for smiles in pool.smiles:
                if constraint.holds(smiles):
                    yield edge(molecule_ref(smiles), node_id, EdgeType.SUPPORT)


def load_into_kag(pool: Pool, kag: KnowledgeActionGraph) -> None:
    """Molecules (entities with their properties), properties (facts), constraints and tools;
    tool -production-> property, constraint -dependency-> property and tool, molecule
    -support-> each rule or substructure constraint it satisfies."""
    kag.add_nodes(_kag_nodes(pool))
    kag.add_edges(_kag_edges(pool))


# ---- the world ---------------------------------------------------------------------------------


def open_world(level: MoleculesLevel, seed: int, resource_dir: Path) -> World:
    """The pool of `level.pool_size` molecules for `seed`; nothing is written to disk."""
    del resource_dir
    pool = build_pool(level.pool_size, seed)

    def expert(task: Task) -> Script:
        return expert_script(task, error_rate=level.expert_error_rate, seed=seed)

    return World(
        proposer=MoleculesProposer(pool, level, seed),
        heldout=lambda n, heldout_seed: heldout_tasks(pool, level, n, heldout_seed),
        expert=expert,
        guesser=guess_without_tools,
        load_kag=lambda kag: load_into_kag(pool, kag),
        info={"pool_size": len(pool.smiles), "heldout_molecules": len(pool.heldout), "seed": seed},
    )


SPEC: DomainSpec[MoleculesLevel] = DomainSpec(
    name=DOMAIN,
    description="filter, rank and pair tasks over RDKit-computed molecular properties",
    level=MoleculesLevel,
    protocol=protocol(),
    verdicts=verify,
    verifiers=VERIFIERS,
    open_world=open_world,
    process_verifiers=frozenset({EXAMINED}),
    min_tool_steps=MIN_TOOL_STEPS,
    heldout_size=100,
    extra_benches=("molbench", "molbench-ms-1"),
    tool_steps=MoleculesLevel.tool_steps,
    turn_tokens=MoleculesLevel.turn_tokens,
)
