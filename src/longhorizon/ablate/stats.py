"""Statistics of a study: a two-level bootstrap (seeds, then items), Holm, and the MDE.

Data: `groups[s][b]` holds one value per item of bench b under seed s: an item's score, or
for a paired comparison the difference of two variants' scores on the same item (variants
are paired within a seed: same synthesis, same held-out items). Seeds are the second level:
different seeds draw different worlds and held-out items, and different training noise.

The estimate of bench b is the mean over seeds of each seed's item mean; the average is the
mean over benches. A resample draws S seeds with replacement and, for every drawn seed
independently, its items with replacement (benches resampled separately: their items are
different tasks). With one seed this is the paired item bootstrap of `evaluation.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from longhorizon.evaluation.stats import DEFAULT_RESAMPLES

__all__ = [
    "Bootstrap",
    "holm",
    "minimum_detectable_effect",
    "two_level_bootstrap",
]

LEVEL = 0.95
ALPHA = 0.05
POWER = 0.8
_CHUNK = 1000  # item resamples drawn at once: memory ~ chunk x items


@dataclass(frozen=True)
class Bootstrap:
    """Point estimates and resampled statistics of every bench and of their average."""

    point: np.ndarray  # (B,) mean over seeds of the item means
    draws: np.ndarray  # (R, B) the same statistic on each resample
    per_seed: np.ndarray  # (S, B) each seed's item mean

    def interval(self, bench: int | None = None, level: float = LEVEL) -> tuple[float, float]:
        """Percentile interval of bench `bench`, or of the average over benches (None)."""
        tail = (1 - level) / 2 * 100
        low, high = np.percentile(self._column(bench), [tail, 100 - tail])
        return float(low), float(high)

    def mean(self, bench: int | None = None) -> float:
        return float(self.point.mean() if bench is None else self.point[bench])

    def p_value(self, bench: int | None = None) -> float:
        """Two-sided bootstrap p-value of "the statistic is 0": twice the smaller share of
        resamples on either side of 0 (each side counted with +1, so never exactly 0)."""
        x = self._column(bench)
        below = (np.count_nonzero(x <= 0) + 1) / (x.size + 1)
        above = (np.count_nonzero(x >= 0) + 1) / (x.size + 1)
        return float(min(1.0, 2 * min(below, above)))

    def seeds(self, bench: int | None = None) -> np.ndarray:
        """Each seed's own estimate (S,)."""
        return self.per_seed.mean(axis=1) if bench is None else self.per_seed[:, bench]

    def seed_sd(self, bench: int | None = None) -> float:
        """Standard deviation of the seeds' estimates (ddof 1; NaN with one seed)."""
        x = self.seeds(bench)
        return float(x.std(ddof=1)) if x.size > 1 else float("nan")

    def _column(self, bench: int | None) -> np.ndarray:
        return self.draws.mean(axis=1) if bench is None else self.draws[:, bench]


def two_level_bootstrap(
    groups: Sequence[Sequence[Sequence[float]]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Bootstrap:
    """Bootstrap of `groups[s][b]` (seed s, bench b: one value per item), seeds then items."""
    values = [[np.asarray(items, dtype=float) for items in by_bench] for by_bench in groups]
    _check_shape(values)
    n_seeds, n_benches = len(values), len(values[0])
    rng = np.random.default_rng(seed)
    drawn_NS = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    sums_RB = np.zeros((resamples, n_benches))
    for s in range(n_seeds):
        rows = np.nonzero(drawn_NS == s)[0]  # one entry per slot that drew seed s
        for b in range(n_benches):
            means = _item_means(values[s][b], rows.size, rng)
            sums_RB[:, b] += np.bincount(rows, weights=means, minlength=resamples)
    per_seed = np.array([[x.mean() for x in by_bench] for by_bench in values])
    return Bootstrap(per_seed.mean(axis=0), sums_RB / n_seeds, per_seed)


def _item_means(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` independent item-resample means of x."""
    out = np.empty(count)
    for start in range(0, count, _CHUNK):
        stop = min(count, start + _CHUNK)
        out[start:stop] = x[rng.integers(0, x.size, size=(stop - start, x.size))].mean(axis=1)
    return out


def _check_shape(values: list[list[np.ndarray]]) -> None:
    if not values or not values[0]:
        raise ValueError("bootstrap needs at least one seed and one bench")
    if len({len(by_bench) for by_bench in values}) != 1:
        raise ValueError("every seed needs the same benches")
    for s, by_bench in enumerate(values):
        for b, x in enumerate(by_bench):
            if x.size == 0:
                raise ValueError(f"seed index {s}, bench index {b}: no items")


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the i-th smallest p times (m - i + 1),
    made monotone and capped at 1. Reject where the adjusted p is below alpha."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def minimum_detectable_effect(
    items: Sequence[Sequence[int]],
    bench: int | None = None,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float:
    """The smallest paired difference the study detects with `power` at two-sided `alpha`,
    given the held-out sizes `items[s][b]`, in the worst case for scores in [0, 1]: each
    item's difference has variance at most 0.25 + 0.25 (scores at 1/2, uncorrelated pairs;
    positively correlated pairs do better). Item-level only: seed-to-seed variation adds."""
    counts = np.asarray(items, dtype=float)
    if bench is not None:
        counts = counts[:, bench : bench + 1]
    n_seeds, n_benches = counts.shape
    variance = (0.5 / counts).sum() / (n_seeds * n_benches) ** 2
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * np.sqrt(variance))
