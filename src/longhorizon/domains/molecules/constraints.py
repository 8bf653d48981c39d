"""Constraints on molecules: a property threshold, a drug-likeness rule, a substructure.

Each is stated in the task's text and evaluated with the same RDKit functions the tools use
(`longhorizon.tools.chem`), so the answer the proposer stores, the one the expert reads off
the tools and the one the verifier recomputes cannot drift apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from longhorizon.tools.chem import RULES, holds, properties, rule_check, substructure_count

__all__ = ["MARGINS", "PATTERNS", "PROPERTY_TEXT", "Constraint"]

# Named substructures (SMARTS) a filter task may ask for or against.
PATTERNS: dict[str, str] = {
    "a carboxylic acid": "C(=O)[OX2H1]",
    "a halogen atom": "[F,Cl,Br,I]",
    "an amide": "C(=O)[NX3]",
    "an aromatic nitrogen": "[n]",
    "a sulfonyl group": "S(=O)(=O)",
    "a hydroxyl group": "[OX2H]",
    "a nitrile": "C#N",
    "an aliphatic ring nitrogen": "[NX3;R]",
}
PROPERTY_TEXT: dict[str, str] = {
    "MW": "MW (average molecular weight)",
    "logP": "logP (Crippen)",
    "TPSA": "TPSA",
    "HBD": "HBD (H-bond donors)",
    "HBA": "HBA (H-bond acceptors)",
    "RotB": "RotB (rotatable bonds)",
    "QED": "QED",
    "AromaticRings": "AromaticRings",
    "HeavyAtoms": "HeavyAtoms",
}
# A threshold stays at least this far from every shown molecule's value, so rounding in an
# observation never decides a task (integer properties need none: thresholds are integers).
MARGINS: dict[str, float] = {"MW": 1.0, "logP": 0.05, "TPSA": 0.5, "QED": 0.01}
RULE_TEXT: dict[str, str] = {
    "lipinski": "passes the Lipinski rule of five (MW <= 500, logP <= 5, HBD <= 5, HBA <= 10)",
    "veber": "passes the Veber rules (RotB <= 10, TPSA <= 140)",
    "egan": "passes the Egan rules (logP <= 5.88, TPSA <= 131.6)",
}


class Constraint(BaseModel):
    """One constraint; `kind` says which of the other fields it uses."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["property", "rule", "substructure"]
    property: str | None = None
    op: Literal["<=", ">="] | None = None
    value: float | None = None
    rule: str | None = None
    pattern: str | None = None  # a name of PATTERNS
    present: bool = True  # substructure: must contain (True) or must not (False)

    def holds(self, smiles: str) -> bool:
        if self.kind == "property":
            assert self.property and self.op and self.value is not None
            return holds(properties(smiles)[self.property], self.op, self.value)
        if self.kind == "rule":
            assert self.rule in RULES
            return rule_check(smiles, self.rule)[0]
        assert self.pattern in PATTERNS
        return (substructure_count(smiles, PATTERNS[self.pattern]) > 0) == self.present

    def text(self) -> str:
        if self.kind == "property":
            return f"{PROPERTY_TEXT[self.property or '']} {self.op} {self.value:g}"
        if self.kind == "rule":
            return RULE_TEXT[self.rule or ""]
        smarts = PATTERNS[self.pattern or ""]
        verb = "contains" if self.present else "does not contain"
        return f"{verb} {self.pattern} (SMARTS {smarts})"
