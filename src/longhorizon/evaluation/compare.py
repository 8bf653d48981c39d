"""Paired comparison of two evaluation directories: A - B per bench and metric.

Only what both directories have enters: benches present in both, seeds present in both,
and items answered under every one of those seeds on both sides. Each side's item scores
are averaged over those seeds, then the items are resampled jointly (the same items for A
and B in every resample), which is what makes the interval paired: it reflects how the
two models differ on the same items, not how hard the items are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.evaluation.items import read_seeds
from longhorizon.evaluation.metrics import paired_metric_difference
from longhorizon.evaluation.runner import benches
from longhorizon.evaluation.stats import Estimate


@dataclass(frozen=True)
class Comparison:
    bench: str
    metric: str
    seeds: list[int]
    difference: Estimate  # A - B; n = paired items

    @property
    def significant(self) -> bool:
        """The 95% interval excludes 0."""
        return self.difference.low > 0 or self.difference.high < 0


def compare_dirs(dir_a: Path, dir_b: Path) -> list[Comparison]:
    """A - B for every metric of every bench both directories evaluated."""
    out: list[Comparison] = []
    for name, bench in benches().items():  # held-out benches of every registered domain too
        a, b = read_seeds(dir_a / name), read_seeds(dir_b / name)
        seeds = sorted(set(a) & set(b))
        if not seeds:
            continue
        a = {s: a[s] for s in seeds}
        b = {s: b[s] for s in seeds}
        for metric in bench.metrics:
            diff = paired_metric_difference(metric, a, b)
            out.append(Comparison(name, metric.name, seeds, diff))
    return out


def comparison_record(dir_a: Path, dir_b: Path, comparisons: list[Comparison]) -> dict[str, Any]:
    """The comparison as plain data: each bench/metric's A - B with its interval and n."""
    return {
        "a": str(dir_a),
        "b": str(dir_b),
        "comparisons": [
            {
                "bench": c.bench,
                "metric": c.metric,
                "seeds": c.seeds,
                "mean": c.difference.mean,
                "low": c.difference.low,
                "high": c.difference.high,
                "n": c.difference.n,
                "significant": c.significant,
            }
            for c in comparisons
        ],
    }
