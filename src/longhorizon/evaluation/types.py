"""Per-item and per-benchmark evaluation records, with a JSON round trip.

An `ItemResult` is one benchmark item answered once, under one seed. A `BenchResult` holds,
for every metric of a benchmark, one `Estimate` per seed (over that seed's items) and one
pooled `Estimate` over items x seeds. Pooling: each item's score is first averaged over the
seeds (so an item counts once, however many seeds ran), then the percentile bootstrap
resamples items. Only items answered under every seed are pooled, so each pooled item
averages the same seeds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.files import write_text_atomic
from longhorizon.evaluation.stats import Estimate

# NaN (an empty estimate) is written as the JSON constant NaN, which json and pydantic read back.
_JSON = ConfigDict(ser_json_inf_nan="constants")


class ItemResult(BaseModel):
    """One benchmark item under one seed: its score (0/1 or a fraction) and what was said.

    `unscored` names why an answered item has no score (an LLM judge absent, failed or not
    understood; see `evaluation.judge`): `score` is then 0 and no metric counts the item.
    """

    model_config = _JSON

    bench: str
    item_id: str
    seed: int
    score: float = Field(ge=0.0, le=1.0)
    prediction: str | None = None
    reference: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    unscored: str | None = None

    @property
    def scored(self) -> bool:
        return self.unscored is None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, line: str | bytes) -> ItemResult:
        return cls.model_validate_json(line)


class MetricResult(BaseModel):
    """One metric: an estimate per seed and the pooled estimate over items x seeds."""

    model_config = _JSON

    name: str
    description: str = ""
    per_seed: dict[int, Estimate]
    pooled: Estimate


class BenchResult(BaseModel):
    """A benchmark run of one model over several seeds; `primary` names the headline metric."""

    model_config = _JSON

    bench: str
    model: str
    seeds: list[int]
    primary: str
    metrics: dict[str, MetricResult]
    n_items: dict[int, int] = Field(default_factory=dict, description="items scored per seed")
    unscored: dict[int, dict[str, int]] = Field(
        default_factory=dict,
        description="answered items per seed that have no score, by why (a judge absent or "
        "failed); they are in no metric and not in n_items",
    )
    truncated: dict[int, int] = Field(
        default_factory=dict, description="episodes per seed that ended TRUNCATED (a budget)"
    )
    forced: dict[int, int] = Field(
        default_factory=dict, description="episodes per seed whose answer a budget forced"
    )
    by_hops: dict[int, Estimate] = Field(
        default_factory=dict,
        description="the primary metric per hop count the task needs, pooled over seeds",
    )
    info: dict[str, Any] = Field(default_factory=dict)

    @property
    def per_seed(self) -> dict[int, Estimate]:
        return self.metrics[self.primary].per_seed

    @property
    def pooled(self) -> Estimate:
        return self.metrics[self.primary].pooled

    def truncated_share(self) -> float:
        """Share of all episodes (every seed) that ended TRUNCATED."""
        total = sum(self.n_items.values())
        return sum(self.truncated.values()) / total if total else 0.0

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> BenchResult:
        return cls.model_validate_json(text)

    def save(self, path: str | Path) -> Path:
        """Write atomically (a temp file, then rename): a reader never sees half a result."""
        return write_text_atomic(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BenchResult:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
