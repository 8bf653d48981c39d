"""RDKit tools for molecules: canonicalise, descriptors, substructure (SMARTS or SMILES),
Tanimoto similarity, rule filters (Lipinski, Veber, Egan) and a documented affinity proxy.

Every tool takes SMILES, answers in one JSON object, and names the molecules it read in
`refs` ("mol:<canonical SMILES>"), so the acceptance rules see which molecules a trajectory
examined. A SMILES RDKit cannot parse is an error observation that names the string and says
what to do; the functions below it (`molecule`, `properties`, ...) are what the molecules
domain's proposer and verifier recompute answers with, so tools and verifier agree by
construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from rdkit import Chem, DataStructs
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors
from rdkit.Chem import rdFingerprintGenerator as fingerprints
from rdkit.rdBase import DisableLog

from longhorizon.tools.base import tool
from longhorizon.tools.types import ToolResult

__all__ = [
    "AFFINITY_FORMULA",
    "PROPERTIES",
    "RULES",
    "ChemError",
    "affinity",
    "canonical",
    "molecule",
    "molecule_ref",
    "properties",
    "rule_check",
    "substructure_count",
    "tanimoto",
]

DisableLog("rdApp.*")  # a bad SMILES is an observation for the agent, not a log line
Mol = Chem.Mol
Rule = Literal["lipinski", "veber", "egan"]
RULE_NAMES: tuple[Rule, ...] = ("lipinski", "veber", "egan")

# name -> (RDKit function, decimals in observations). The names MolBench-ms-1 uses map onto
# these: MolWt = MW, MolLogP = logP, NumHDonors = HBD, NumHAcceptors = HBA, RotB = RotB.
# (RDKit sets these Descriptors/Crippen/Lipinski functions at import: its stubs miss them.)
PROPERTIES: dict[str, tuple[Callable[[Mol], float], int]] = {
    "MW": (Descriptors.MolWt, 2),  # type: ignore[attr-defined]  # average, g/mol
    "logP": (Crippen.MolLogP, 2),  # type: ignore[attr-defined]  # Wildman-Crippen
    "TPSA": (rdMolDescriptors.CalcTPSA, 2),  # topological polar surface area, Å²
    "HBD": (Lipinski.NumHDonors, 0),  # type: ignore[attr-defined]
    "HBA": (Lipinski.NumHAcceptors, 0),  # type: ignore[attr-defined]
    "RotB": (Descriptors.NumRotatableBonds, 0),  # type: ignore[attr-defined]
    "QED": (QED.qed, 3),
    "HeavyAtoms": (Chem.Mol.GetNumHeavyAtoms, 0),
    "Rings": (rdMolDescriptors.CalcNumRings, 0),
    "AromaticRings": (rdMolDescriptors.CalcNumAromaticRings, 0),
    "FractionCSP3": (rdMolDescriptors.CalcFractionCSP3, 3),
}

# rule -> [(property, op, limit)]; a molecule passes a rule when every criterion holds
# (Lipinski as MolBench-ms-1 states it: all four, no violation allowed).
RULES: dict[str, tuple[tuple[str, str, float], ...]] = {
    "lipinski": (("MW", "<=", 500), ("logP", "<=", 5), ("HBD", "<=", 5), ("HBA", "<=", 10)),
    "veber": (("RotB", "<=", 10), ("TPSA", "<=", 140)),
    "egan": (("logP", "<=", 5.88), ("TPSA", "<=", 131.6)),
}

# The affinity proxy: a documented toy score, not a binding predictor. Larger means "binds
# more strongly" in the molecules domain's pair tasks; the README states the same formula.
AFFINITY_WEIGHTS: tuple[tuple[str, float], ...] = (
    ("logP_clipped", 0.9),
    ("AromaticRings", 0.5),
    ("HBD_capped", 0.3),
    ("HBA_capped", 0.15),
    ("RotB", -0.2),
    ("TPSA", -0.01),
    ("QED", 2.0),
)
AFFINITY_FORMULA = (
    "0.9*clip(logP, -1, 5) + 0.5*AromaticRings + 0.3*min(HBD, 3) + 0.15*min(HBA, 8) "
    "- 0.2*RotB - 0.01*TPSA + 2.0*QED"
)
MORGAN_RADIUS = 2
MORGAN_BITS = 2048


class ChemError(ValueError):
    """A SMILES or pattern RDKit cannot parse; the message says which and what to do."""


def molecule(smiles: str) -> Mol:
    """The parsed molecule, or ChemError naming the string."""
    text = smiles.strip()
    mol = Chem.MolFromSmiles(text) if text else None
    if mol is None or mol.GetNumAtoms() == 0:
        raise ChemError(
            f"invalid SMILES {smiles!r}: RDKit cannot parse it; "
            "copy the SMILES exactly as given (balanced brackets, closed rings)"
        )
    return mol


@lru_cache(maxsize=65536)
def canonical(smiles: str) -> str:
    """RDKit's canonical isomeric SMILES (ChemError if invalid)."""
    return str(Chem.MolToSmiles(molecule(smiles)))


def molecule_ref(smiles: str) -> str:
    """The evidence id of a molecule: its canonical SMILES, prefixed."""
    return f"mol:{canonical(smiles)}"


@lru_cache(maxsize=65536)
def properties(smiles: str) -> dict[str, float]:
    """Every descriptor of `PROPERTIES`, full precision (integers for the counts)."""
    mol = molecule(smiles)
    out: dict[str, float] = {}
    for name, (fn, decimals) in PROPERTIES.items():
        value = fn(mol)
        out[name] = int(value) if decimals == 0 else float(value)
    return out


def holds(value: float, op: str, limit: float) -> bool:
    if op == "<=":
        return value <= limit
    if op == ">=":
        return value >= limit
    raise ValueError(f"unknown comparison {op!r}")


def rule_check(smiles: str, rule: str) -> tuple[bool, list[dict[str, Any]]]:
    """(passes, one record per criterion) for a rule of `RULES`."""
    props = properties(smiles)
    criteria = [
        {"property": p, "value": _shown(p, props[p]), "limit": f"{op} {limit:g}"}
        | {"ok": holds(props[p], op, limit)}
        for p, op, limit in RULES[rule]
    ]
    return all(c["ok"] for c in criteria), criteria


@lru_cache(maxsize=256)
def query_mol(text: str, kind: str = "smarts") -> Mol:
    mol = Chem.MolFromSmarts(text) if kind == "smarts" else Chem.MolFromSmiles(text)
    if mol is None:
        raise ChemError(f"invalid {kind.upper()} pattern {text!r}: RDKit cannot parse it")
    return mol


def substructure_count(smiles: str, query: str, kind: str = "smarts") -> int:
    """How many times the pattern matches the molecule (unique matches)."""
    return len(molecule(smiles).GetSubstructMatches(query_mol(query, kind)))


@lru_cache(maxsize=8)
def _generator(radius: int, n_bits: int) -> Any:
    return fingerprints.GetMorganGenerator(radius=radius, fpSize=n_bits)


def tanimoto(a: str, b: str, radius: int = MORGAN_RADIUS, n_bits: int = MORGAN_BITS) -> float:
    """Tanimoto similarity of the Morgan bit fingerprints (radius, bits) of two molecules."""
    gen = _generator(radius, n_bits)
    fa, fb = gen.GetFingerprint(molecule(a)), gen.GetFingerprint(molecule(b))
    return float(DataStructs.TanimotoSimilarity(fa, fb))


def affinity_terms(smiles: str) -> dict[str, float]:
    props = properties(smiles)
    return {
        "logP_clipped": min(max(props["logP"], -1.0), 5.0),
        "AromaticRings": props["AromaticRings"],
        "HBD_capped": min(props["HBD"], 3),
        "HBA_capped": min(props["HBA"], 8),
        "RotB": props["RotB"],
        "TPSA": props["TPSA"],
        "QED": props["QED"],
    }


def affinity(smiles: str) -> float:
    """The affinity proxy (`AFFINITY_FORMULA`), full precision."""
    terms = affinity_terms(smiles)
    return sum(weight * terms[name] for name, weight in AFFINITY_WEIGHTS)


def _shown(name: str, value: float) -> float:
    decimals = PROPERTIES[name][1]
    return int(value) if decimals == 0 else round(value, decimals)


# ---- the tools ---------------------------------------------------------------------------------


def _observe(data: dict[str, Any], *smiles: str) -> ToolResult:
    return ToolResult(content=json.dumps(data), refs=[molecule_ref(s) for s in smiles])


def _guarded(run: Callable[[], ToolResult]) -> ToolResult:
    """The tool's observation, or the ChemError as an error observation."""
    try:
        return run()
    except ChemError as exc:
        return ToolResult(content=f"Error: {exc}", error=str(exc))


@tool(timeout_s=10.0)
def canonicalize(smiles: str) -> ToolResult:
    """RDKit's canonical isomeric SMILES of a molecule (one molecule written two ways gives
    the same string).

    Args:
        smiles: the molecule as SMILES
    """
    return _guarded(lambda: _observe({"canonical": canonical(smiles)}, smiles))


@tool(timeout_s=10.0)
def descriptors(smiles: str) -> ToolResult:
    """Descriptors of a molecule computed with RDKit: MW (average molecular weight), logP
    (Wildman-Crippen), TPSA, HBD and HBA (Lipinski donors and acceptors), RotB (rotatable
    bonds), QED, HeavyAtoms, Rings, AromaticRings and FractionCSP3.

    Args:
        smiles: the molecule as SMILES
    """

    def run() -> ToolResult:
        props = properties(smiles)
        shown = {name: _shown(name, value) for name, value in props.items()}
        return _observe({"smiles": smiles, **shown}, smiles)

    return _guarded(run)


@tool(timeout_s=10.0)
def substructure(
    smiles: str, pattern: str, kind: Literal["smarts", "smiles"] = "smarts"
) -> ToolResult:
    """Whether a molecule contains a substructure, and how many times it matches.

    Args:
        smiles: the molecule as SMILES
        pattern: the substructure, as SMARTS (e.g. C(=O)[OX2H1] for a carboxylic acid) or as SMILES
        kind: how the pattern is written: smarts or smiles
    """

    def run() -> ToolResult:
        count = substructure_count(smiles, pattern, kind)
        return _observe(
            {"smiles": smiles, "pattern": pattern, "match": count > 0} | {"count": count}, smiles
        )

    return _guarded(run)


@tool(timeout_s=10.0)
def similarity(
    smiles_a: str, smiles_b: str, radius: int = MORGAN_RADIUS, n_bits: int = MORGAN_BITS
) -> ToolResult:
    """Tanimoto similarity (0 to 1) of two molecules' Morgan bit fingerprints.

    Args:
        smiles_a: the first molecule as SMILES
        smiles_b: the second molecule as SMILES
        radius: the Morgan radius (2 is ECFP4-like)
        n_bits: the fingerprint length in bits
    """

    def run() -> ToolResult:
        if not 0 <= radius <= 6 or not 64 <= n_bits <= 16384:
            raise ChemError(f"radius {radius} / n_bits {n_bits}: need 0..6 and 64..16384")
        value = round(tanimoto(smiles_a, smiles_b, radius, n_bits), 4)
        data = {"smiles_a": smiles_a, "smiles_b": smiles_b, "tanimoto": value}
        data["fingerprint"] = f"Morgan radius {radius}, {n_bits} bits"
        return _observe(data, smiles_a, smiles_b)

    return _guarded(run)


@tool(timeout_s=10.0)
def rule_filter(smiles: str, rule: Rule = "lipinski") -> ToolResult:
    """Whether a molecule passes a drug-likeness rule, with each criterion's value: lipinski
    (MW <= 500, logP <= 5, HBD <= 5, HBA <= 10, all four), veber (RotB <= 10, TPSA <= 140) or
    egan (logP <= 5.88, TPSA <= 131.6).

    Args:
        smiles: the molecule as SMILES
        rule: lipinski, veber or egan
    """

    def run() -> ToolResult:
        passes, criteria = rule_check(smiles, rule)
        data = {"smiles": smiles, "rule": rule, "passes": passes, "criteria": criteria}
        return _observe(data, smiles)

    return _guarded(run)


@tool(timeout_s=10.0)
def affinity_proxy(smiles: str) -> ToolResult:
    """The predicted-affinity proxy of a molecule (larger = predicted to bind more strongly):
    0.9*clip(logP, -1, 5) + 0.5*AromaticRings + 0.3*min(HBD, 3) + 0.15*min(HBA, 8) - 0.2*RotB
    - 0.01*TPSA + 2.0*QED. A documented toy score, not a docking or binding model.

    Args:
        smiles: the molecule as SMILES
    """

    def run() -> ToolResult:
        terms = {k: round(v, 3) for k, v in affinity_terms(smiles).items()}
        data = {"smiles": smiles, "score": round(affinity(smiles), 3), "terms": terms}
        return _observe(data, smiles)

    return _guarded(run)
