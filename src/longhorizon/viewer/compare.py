"""Two stages (or two runs) on the same held-out items, the items whose verdict differs first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from longhorizon.evaluation.items import read_seeds
from longhorizon.evaluation.types import ItemResult

__all__ = ["ItemPair", "compare_items"]


@dataclass(frozen=True)
class ItemPair:
    item_id: str
    seed: int
    a: ItemResult | None
    b: ItemResult | None

    @property
    def differs(self) -> bool:
        if self.a is None or self.b is None:
            return True
        return (self.a.score, self.a.unscored) != (self.b.score, self.b.unscored)

    @property
    def reference(self) -> str | None:
        return (self.a or self.b).reference if (self.a or self.b) else None  # type: ignore[union-attr]


def compare_items(a_dir: Path, b_dir: Path) -> list[ItemPair]:
    """Items of both bench folders joined on (item, seed); differing verdicts first."""
    a, b = read_seeds(a_dir), read_seeds(b_dir)
    pairs = []
    for seed in sorted(set(a) | set(b)):
        ids = list(dict.fromkeys([*a.get(seed, {}), *b.get(seed, {})]))
        for item in ids:
            pairs.append(ItemPair(item, seed, a.get(seed, {}).get(item), b.get(seed, {}).get(item)))
    return sorted(pairs, key=lambda p: not p.differs)  # stable: file order within each group
