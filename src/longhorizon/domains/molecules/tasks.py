"""Molecule tasks with plans, proposed from the pool: filter, rank, pair.

- filter: list every molecule of a set that meets 1-5 constraints (property thresholds, at
  most one drug-likeness rule, at most one substructure). Plan: descriptors for each
  molecule, then rule_filter / substructure for those still in the running.
- rank: the top 3 of a set, in order, by Tanimoto similarity to a reference molecule
  (Morgan radius 2, 2048 bits) or by a descriptor. Plan: one call per molecule.
- pair: of two molecules, the one with the larger (or smaller) predicted affinity under the
  documented proxy (`longhorizon.tools.chem.AFFINITY_FORMULA`). Plan: two calls.

A draw is rejected (None) when it would be ambiguous: a threshold within `MARGINS` of a
shown value, a filter that keeps none or all, ranks closer than `RANK_GAP`, a pair closer
than `PAIR_GAP`. Half a set comes from one scaffold (a region of the graph), so thresholds
and similarities separate near neighbours, not only unrelated molecules.
"""

from __future__ import annotations

import hashlib
import json
import random
from itertools import pairwise
from typing import Any

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.domains.molecules.constraints import MARGINS, PATTERNS, PROPERTY_TEXT, Constraint
from longhorizon.domains.molecules.level import KINDS, RANK_TOP, MoleculesLevel
from longhorizon.domains.molecules.pool import Pool
from longhorizon.tools.chem import RULES, affinity, molecule_ref, properties, tanimoto

DOMAIN = "molecules"
GENERATOR = "longhorizon.domains.molecules.propose_task"
TOOLS: tuple[str, ...] = (
    "canonicalize",
    "descriptors",
    "substructure",
    "similarity",
    "rule_filter",
    "affinity_proxy",
)
ANSWER = "molecule_answer"
EXAMINED = "molecules_examined"
SYSTEM_PROMPT = (
    "You are a cheminformatics agent with RDKit tools. Compute every property you need with "
    "the tools; do not estimate them. Copy SMILES exactly as given. Give the final answer "
    "inside <answer></answer>."
)
RANK_GAP = 0.01  # similarity or descriptor values of consecutive ranks differ by this much
PAIR_GAP = 0.2  # the two proxies of a pair differ by this much
RANK_PROPERTIES = ("MW", "logP", "TPSA", "QED")
THRESHOLD_PROPERTIES = ("MW", "logP", "TPSA", "HBD", "HBA", "RotB", "QED", "AromaticRings")
DEFAULT_MAX_TURNS = 30


def protocol(max_turns: int = DEFAULT_MAX_TURNS) -> Protocol:
    return Protocol(tools=TOOLS, budgets=Budgets(max_turns=max_turns), system_prompt=SYSTEM_PROMPT)


# ---- drawing sets -----------------------------------------------------------------------------


def draw_set(pool: Pool, rng: random.Random, n: int, heldout: bool) -> list[str]:
    """n distinct molecules: half from one scaffold (a region), the rest from anywhere."""
    part = pool.part(heldout)
    anchor = rng.choice(part)
    region = [s for s in part if pool.scaffold[s] == pool.scaffold[anchor]]
    chosen = rng.sample(region, min(len(region), n // 2))
    rest = [s for s in part if s not in chosen]
    chosen += rng.sample(rest, n - len(chosen))
    rng.shuffle(chosen)
    return chosen


def _threshold(name: str, values: list[float], rng: random.Random) -> tuple[str, float] | None:
    """(op, value) splitting `values`, at least MARGINS[name] from each; None if none does."""
    ordered = sorted(set(values))
    if len(ordered) < 2:
        return None
    cut = rng.randrange(len(ordered) - 1)
    low, high = ordered[cut], ordered[cut + 1]
    op = rng.choice(["<=", ">="])
    if name not in MARGINS:  # an integer count: the threshold is one of the two counts
        return op, float(low if op == "<=" else high)
    value = round((low + high) / 2, 2 if name in ("logP", "QED") else 1)
    if min(abs(v - value) for v in values) < MARGINS[name]:
        return None
    return op, value


def _constraint(
    kind: str, molecules: list[str], survivors: list[str], used: set[str], rng: random.Random
) -> Constraint | None:
    """A constraint of `kind` that keeps at least one survivor; None when the draw fails."""
    if kind == "rule":
        found = Constraint(kind="rule", rule=rng.choice(sorted(RULES)))
    elif kind == "substructure":
        name = rng.choice(sorted(PATTERNS))
        found = Constraint(kind="substructure", pattern=name, present=rng.random() < 0.5)
    else:
        name = rng.choice([p for p in THRESHOLD_PROPERTIES if p not in used])
        split = _threshold(name, [properties(s)[name] for s in survivors], rng)
        if split is None or (
            name in MARGINS
            and min(abs(properties(s)[name] - split[1]) for s in molecules) < MARGINS[name]
        ):
            return None
        found = Constraint(kind="property", property=name, op=split[0], value=split[1])
        used.add(name)
    return found if any(found.holds(s) for s in survivors) else None


def _kinds(n: int, rng: random.Random) -> list[str]:
    """Constraint kinds: a property first; at most one rule and one substructure."""
    kinds = ["property"]
    for _ in range(n - 1):
        options = ["property"] + [k for k in ("rule", "substructure") if k not in kinds]
        kinds.append(rng.choice(options))
    return kinds


# ---- the three kinds ---------------------------------------------------------------------------


def filter_draw(pool: Pool, rng: random.Random, level: MoleculesLevel, heldout: bool) -> Any:
    molecules = draw_set(pool, rng, rng.randint(*level.set_size), heldout)
    survivors, used, constraints = list(molecules), set[str](), []
    for kind in _kinds(rng.randint(*level.constraints), rng):
        found = _constraint(kind, molecules, survivors, used, rng)
        if found is None:
            return None
        constraints.append(found)
        survivors = [s for s in survivors if found.holds(s)]
    if not 0 < len(survivors) < len(molecules):
        return None
    lines = "\n".join(f"- {c.text()}" for c in constraints)
    question = (
        f"From the molecules below, list every one that satisfies all of these constraints:\n"
        f"{lines}\n\nMolecules:\n" + "\n".join(molecules) + "\n\nGive the satisfying SMILES "
        "inside <answer></answer>, exactly as written above, one per line, in the order given."
    )
    meta = {"constraints": [c.model_dump(exclude_defaults=True) for c in constraints]}
    return question, molecules, survivors, meta


def rank_values(meta: dict[str, Any], molecules: list[str]) -> list[float]:
    """The ranking key of each molecule (larger first after `direction`)."""
    if meta["by"] == "similarity":
        return [tanimoto(meta["reference"], s) for s in molecules]
    return [properties(s)[meta["by"]] for s in molecules]


def ranked(meta: dict[str, Any], molecules: list[str]) -> list[str]:
    """The top `RANK_TOP` molecules in order (highest first, or lowest for "lowest")."""
    keyed = zip(rank_values(meta, molecules), molecules, strict=True)
    ordered = sorted(keyed, reverse=meta["direction"] == "highest")
    return [s for _, s in ordered[:RANK_TOP]]


def rank_draw(pool: Pool, rng: random.Random, level: MoleculesLevel, heldout: bool) -> Any:
    drawn = draw_set(pool, rng, rng.randint(*level.set_size) + 1, heldout)
    if rng.random() < 0.5:
        meta = {"by": "similarity", "direction": "highest", "reference": drawn[0]}
        molecules = drawn[1:]
        ask = (
            f"Rank the molecules below by Tanimoto similarity to the reference molecule "
            f"{drawn[0]} (Morgan fingerprints, radius 2, 2048 bits)"
        )
    else:
        by, direction = rng.choice(RANK_PROPERTIES), rng.choice(["highest", "lowest"])
        meta, molecules = {"by": by, "direction": direction}, drawn[:-1]
        ask = f"Rank the molecules below by {PROPERTY_TEXT[by]}, {direction} first"
    values = sorted(rank_values(meta, molecules), reverse=meta["direction"] == "highest")
    if any(abs(a - b) < RANK_GAP for a, b in pairwise(values[: RANK_TOP + 1])):
        return None
    question = (
        f"{ask}.\n\nMolecules:\n" + "\n".join(molecules) + f"\n\nGive the top {RANK_TOP} "
        "inside <answer></answer>, exactly as written above, one per line, best first."
    )
    return question, molecules, ranked(meta, molecules), meta


def pair_draw(pool: Pool, rng: random.Random, level: MoleculesLevel, heldout: bool) -> Any:
    del level
    molecules = draw_set(pool, rng, 2, heldout)
    direction = rng.choice(["larger", "smaller"])
    scores = [affinity(s) for s in molecules]
    if abs(scores[0] - scores[1]) < PAIR_GAP:
        return None
    question = (
        f"Which of these two molecules has the {direction} predicted affinity under the "
        f"affinity_proxy score?\n\nMolecule A: {molecules[0]}\nMolecule B: {molecules[1]}\n\n"
        "Give its SMILES inside <answer></answer>, exactly as written above."
    )
    return question, molecules, [pair_answer(direction, molecules)], {"direction": direction}


def pair_answer(direction: str, molecules: list[str]) -> str:
    pick = max if direction == "larger" else min
    return pick(molecules, key=affinity)


DRAWS = {"filter": filter_draw, "rank": rank_draw, "pair": pair_draw}


def _task_id(kind: str, molecules: list[str], question: str) -> str:
    key = json.dumps([kind, molecules, question]).encode()
    return f"molecules-{hashlib.sha256(key).hexdigest()[:12]}"


def propose_task(
    pool: Pool,
    rng: random.Random,
    level: MoleculesLevel,
    *,
    kind: str | None = None,
    heldout: bool = False,
    seed: int | None = None,
) -> Task | None:
    """One task of `kind` (drawn by the level's weights when None), or None when ambiguous."""
    kind = kind or rng.choices(KINDS, weights=level.kind_weights)[0]
    drawn = DRAWS[kind](pool, rng, level, heldout)
    if drawn is None:
        return None
    question, molecules, answer, extra = drawn
    shown = molecules + ([extra["reference"]] if "reference" in extra else [])
    return Task(
        id=_task_id(kind, molecules, question),
        domain=DOMAIN,
        instruction=question,
        answer="\n".join(answer),
        evidence=[molecule_ref(s) for s in shown],
        verifiers=[VerifierSpec(name=ANSWER), VerifierSpec(name=EXAMINED)],
        protocol=protocol(max(DEFAULT_MAX_TURNS, level.tool_steps() + 1)),
        provenance=Provenance(source="synthetic", generator=GENERATOR, seed=seed),
        metadata={"kind": kind, "molecules": molecules, "heldout": heldout, **extra},
    )
