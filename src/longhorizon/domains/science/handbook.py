"""The reference handbook: a generated corpus of fictional materials and real constants.

Interaction-enriched tasks name a material without its property ("a wire of Kemarite");
the value is on the material's page only. The materials are invented per world seed, so no
model knows their values: the lookup cannot be skipped. Each page states density, specific
heat capacity, electrical resistivity and refractive index in one fixed sentence form
("Specific heat capacity: 412 J/(kg*K).") that a reader (and the scripted expert) parses.
A few pages are near-duplicates ("Kemarite" and "Kemarite-B") so search must be read with
care. Constants pages hold the standard values the problems state (g, R, water's c).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from longhorizon.domains.science.units import round_sig
from longhorizon.tools.corpus import Document

__all__ = [
    "CONSTANTS",
    "CORPUS_FILE",
    "PROPERTIES",
    "Constant",
    "Handbook",
    "Material",
    "Property",
    "read_property",
]

CORPUS_FILE = "handbook.jsonl"
_SYLLABLES = ("ke", "ma", "ri", "to", "va", "lo", "sen", "dra", "mi", "por", "quel", "tha")
_SUFFIXES = ("ite", "ium", "ane", "ol", "ene", "ide")


@dataclass(frozen=True)
class Property:
    key: str  # the symbol's property name in families
    label: str  # as written on a page
    unit: str  # pint unit string
    lo: float
    hi: float


PROPERTIES: dict[str, Property] = {
    p.key: p
    for p in (
        Property("density", "Density", "kg/m**3", 1500.0, 12000.0),
        Property("specific_heat", "Specific heat capacity", "J/(kg*K)", 120.0, 1800.0),
        Property("resistivity", "Electrical resistivity", "ohm*m", 1.5e-8, 1.5e-6),
        Property("refractive_index", "Refractive index", "", 1.30, 2.40),
    )
}


@dataclass(frozen=True)
class Constant:
    symbol: str
    name: str
    value: float
    unit: str


CONSTANTS: dict[str, Constant] = {
    c.symbol: c
    for c in (
        Constant("g", "standard acceleration of gravity", 9.80665, "m/s**2"),
        Constant("R", "molar gas constant", 8.314462618, "J/(mol*K)"),
        Constant("c_w", "specific heat capacity of liquid water", 4186.0, "J/(kg*K)"),
        Constant("c0", "standard concentration", 1.0, "mol/L"),
    )
}


@dataclass(frozen=True)
class Material:
    id: str
    name: str
    values: dict[str, float]  # property key -> value in the property's unit

    def sentence(self, key: str) -> str:
        prop = PROPERTIES[key]
        unit = f" {prop.unit}" if prop.unit else ""
        return f"{prop.label}: {self.values[key]:.4g}{unit}."


def read_property(page: str, key: str) -> float | None:
    """The value of `key` as a page states it ("Density: 7870 kg/m**3."), or None."""
    label = re.escape(PROPERTIES[key].label)
    match = re.search(rf"{label}: ([-+0-9.eE]+)", page)
    return float(match.group(1).rstrip(".")) if match else None


class Handbook:
    """Materials by id, their pages, and the constants pages; deterministic in the seed."""

    def __init__(self, materials: list[Material], seed: int) -> None:
        self.materials = materials
        self.seed = seed
        self.by_id = {m.id: m for m in materials}

    @classmethod
    def generate(cls, n: int = 40, seed: int = 0) -> Handbook:
        rng = random.Random(f"handbook:{seed}")
        names: list[str] = []
        while len(names) < n:
            name = _name(rng)
            if name not in names:
                names.append(name)
        materials = []
        for i, name in enumerate(names):
            values = {k: round_sig(rng.uniform(p.lo, p.hi), 4) for k, p in PROPERTIES.items()}
            materials.append(Material(f"mat-{seed}-{i:03d}", name, values))
        # Near-duplicates: a variant of some materials with other values (a careless reader
        # who stops at the first similar title reads the wrong number).
        for i, base in enumerate(materials[: n // 5]):
            values = {k: round_sig(v * rng.uniform(0.7, 1.3), 4) for k, v in base.values.items()}
            materials.append(Material(f"mat-{seed}-v{i:02d}", f"{base.name}-B", values))
        return cls(materials, seed)

    def pick(self, rng: random.Random) -> Material:
        """A main material (variants are distractors, never the subject of a problem)."""
        return rng.choice([m for m in self.materials if not m.name.endswith("-B")])

    def documents(self) -> list[Document]:
        docs = [_material_page(m) for m in self.materials]
        docs += [_constant_page(c) for c in CONSTANTS.values()]
        return docs

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / CORPUS_FILE
        rows = (json.dumps(d.model_dump(), ensure_ascii=False) for d in self.documents())
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
        return path


def _name(rng: random.Random) -> str:
    stem = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
    return (stem + rng.choice(_SUFFIXES)).capitalize()


def _material_page(m: Material) -> Document:
    intro = (
        f"{m.name} is a synthetic material catalogued in the reference handbook. "
        f"The values below are measured at 20 degrees Celsius and normal pressure."
    )
    facts = " ".join(m.sentence(k) for k in PROPERTIES)
    return Document(id=m.id, title=m.name, text=f"{intro}\n\n{facts}")


def _constant_page(c: Constant) -> Document:
    text = f"The {c.name} ({c.symbol}) is {c.value:.10g} {c.unit} (standard value)."
    return Document(id=f"const-{c.symbol}", title=c.name.capitalize(), text=text)
