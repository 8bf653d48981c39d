"""Typed entities and the generator's configuration (plain data, no behaviour)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_SHARES: dict[str, float] = {
    "country": 0.02,
    "city": 0.15,
    "university": 0.06,
    "person": 0.35,
    "company": 0.15,
    "river": 0.05,
    "book": 0.14,
    "band": 0.08,
}


class EncyclopediaConfig(BaseModel):
    """Size, seed and shape of a generated encyclopedia; the output is a function of these."""

    model_config = ConfigDict(frozen=True)

    n_entities: int = Field(default=3000, ge=20)
    seed: int = 0
    shares: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_SHARES), description="share of entities per kind"
    )
    near_duplicate_rate: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="chance that a river, university or company is named after a related "
        "entity ('Varo' -> 'Varo River'), producing near-duplicate titles",
    )
    min_year: int = 1100
    max_year: int = 2020


@dataclass
class Entity:
    """One encyclopedia entity: scalar attributes and single-valued links to other entities."""

    id: str
    kind: str
    name: str
    attributes: dict[str, int | str] = field(default_factory=dict)
    relations: dict[str, str] = field(default_factory=dict)  # relation name -> entity id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "attributes": self.attributes,
            "relations": self.relations,
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Entity:
        return cls(
            id=str(row["id"]),
            kind=str(row["kind"]),
            name=str(row["name"]),
            attributes=dict(row.get("attributes") or {}),
            relations={k: str(v) for k, v in (row.get("relations") or {}).items()},
        )


def slug(name: str) -> str:
    """A wiki-style page id from a title: words joined by underscores."""
    return "_".join(name.split())
