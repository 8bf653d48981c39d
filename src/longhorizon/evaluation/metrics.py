"""Benchmark metrics as weighted sums of ratios, with a bootstrap that resamples whole items.

A metric is sum_j w_j * (sum_i num_j(i) / sum_i den_j(i)) over items i. A plain accuracy is
one part with den = 1; IFEval's instruction-level accuracy is one part with num = followed
instructions and den = instructions of the prompt, so resampling items resamples whole
prompts (their instructions are not independent); IFEval's average is two parts with
weight 1/2. The interval is the percentile bootstrap of `stats.bootstrap_mean` (same
resample count, level and seed), computed on every part from the same resampled items.
Unscored items (`ItemResult.unscored`: a judge absent or failed) enter no metric: they are
dropped before estimating, pooling or pairing, as if never answered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from longhorizon.evaluation.stats import DEFAULT_RESAMPLES, Estimate
from longhorizon.evaluation.types import ItemResult

Value = Callable[[ItemResult], float]


def _one(result: ItemResult) -> float:
    return 1.0


def _score(result: ItemResult) -> float:
    return result.score


@dataclass(frozen=True)
class Ratio:
    """sum(numerator) / sum(denominator) over items."""

    numerator: Value = _score
    denominator: Value = _one


@dataclass(frozen=True)
class Metric:
    name: str
    parts: tuple[tuple[float, Ratio], ...]
    description: str = ""


ACCURACY = Metric("accuracy", ((1.0, Ratio()),), "mean item score")


def scored_only(items: Sequence[ItemResult]) -> list[ItemResult]:
    return [i for i in items if i.scored]


def scored_by_seed(
    by_seed: dict[int, dict[str, ItemResult]],
) -> dict[int, dict[str, ItemResult]]:
    """Each seed's items without the unscored ones."""
    return {s: {k: r for k, r in items.items() if r.scored} for s, items in by_seed.items()}


def item_matrix(metric: Metric, items: Sequence[ItemResult]) -> tuple[np.ndarray, np.ndarray]:
    """(numerators, denominators), each items x parts."""
    num = np.array([[r.numerator(i) for _, r in metric.parts] for i in items], dtype=float)
    den = np.array([[r.denominator(i) for _, r in metric.parts] for i in items], dtype=float)
    shape = (len(items), len(metric.parts))
    return num.reshape(shape), den.reshape(shape)


def _value(metric: Metric, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """The metric along the last-but-one axis (items); works on a stack of resamples too."""
    weights = np.array([w for w, _ in metric.parts])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = num.sum(axis=-2) / den.sum(axis=-2)
    return (ratios * weights).sum(axis=-1)


def bootstrap_metric(
    metric: Metric,
    num: np.ndarray,
    den: np.ndarray,
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """The metric on items (rows of num/den) with a percentile bootstrap over items."""
    n = num.shape[0]
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, level)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    values = np.concatenate([_value(metric, num[c], den[c]) for c in _chunks(index)])
    if np.isnan(values).all():  # no item counts (a per-category metric without its category)
        return Estimate(float("nan"), float("nan"), float("nan"), 0, level)
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail])
    point = float(_value(metric, num, den))
    return Estimate(point, float(low), float(high), n, level)


def _chunks(index: np.ndarray, size: int = 1000) -> list[np.ndarray]:
    # Resampled arrays are resamples x items x parts: chunk the resamples to bound memory.
    return [index[i : i + size] for i in range(0, len(index), size)]


def estimate(
    metric: Metric,
    items: Sequence[ItemResult],
    *,
    level: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """The metric over one seed's scored items, with its bootstrap interval."""
    num, den = item_matrix(metric, scored_only(items))
    return bootstrap_metric(metric, num, den, level=level, resamples=resamples, seed=seed)


def seed_averaged(
    metric: Metric, by_seed: dict[int, dict[str, ItemResult]]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Items scored under every seed, with numerators and denominators averaged over seeds."""
    by_seed = scored_by_seed(by_seed)
    common = _common_ids(by_seed.values())
    if not by_seed or not common:
        empty = np.zeros((0, len(metric.parts)))
        return [], empty, empty
    mats = [item_matrix(metric, [items[i] for i in common]) for items in by_seed.values()]
    num = np.mean([m[0] for m in mats], axis=0)
    den = np.mean([m[1] for m in mats], axis=0)
    return common, num, den


def pooled_estimate(metric: Metric, by_seed: dict[int, dict[str, ItemResult]]) -> Estimate:
    """Each item averaged over the seeds, then the bootstrap over items."""
    _, num, den = seed_averaged(metric, by_seed)
    return bootstrap_metric(metric, num, den)


def paired_metric_difference(
    metric: Metric,
    a: dict[int, dict[str, ItemResult]],
    b: dict[int, dict[str, ItemResult]],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """metric(a) - metric(b) on the items and seeds both have, resampling items jointly.

    Each side is first averaged over the shared seeds per item (as in pooling), so the two
    sides always see the same items under the same seeds.
    """
    seeds = sorted(set(a) & set(b))
    a, b = scored_by_seed(a), scored_by_seed(b)
    common = _common_ids([a[s] for s in seeds] + [b[s] for s in seeds])
    if not common:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    _, num_a, den_a = seed_averaged(metric, {s: {i: a[s][i] for i in common} for s in seeds})
    _, num_b, den_b = seed_averaged(metric, {s: {i: b[s][i] for i in common} for s in seeds})
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(common), size=(resamples, len(common)))
    diffs = np.concatenate(
        [
            _value(metric, num_a[c], den_a[c]) - _value(metric, num_b[c], den_b[c])
            for c in _chunks(index)
        ]
    )
    low, high = np.nanpercentile(diffs, [2.5, 97.5])
    point = float(_value(metric, num_a, den_a) - _value(metric, num_b, den_b))
    return Estimate(point, float(low), float(high), len(common))


def _common_ids(groups: Iterable[dict[str, ItemResult]]) -> list[str]:
    groups = list(groups)
    if not groups:
        return []
    first = groups[0]
    shared = set(first).intersection(*groups[1:])
    return [i for i in first if i in shared]  # the first seed's order: stable and readable
