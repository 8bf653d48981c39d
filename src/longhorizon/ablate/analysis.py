"""From the cells' per-item files to every number a study reports.

Each cell's evaluation folder holds `<bench>/items-seed<k>.jsonl` (k: decoding seeds of the
recipe's `eval.seeds`). An item's score is its mean over the decoding seeds it was answered
under (only items answered under all of them count, as in `evaluation.metrics`). Benches
must score by the item mean (the held-out benches and MolBench do; IFEval's prompt/instruction
ratios do not and are refused). Variants are paired with the baseline within a seed, on the
items both answered.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from longhorizon.ablate.stats import Bootstrap, holm, two_level_bootstrap
from longhorizon.ablate.study import Cell
from longhorizon.evaluation.items import items_path, read_seeds
from longhorizon.evaluation.metrics import ACCURACY, seed_averaged
from longhorizon.evaluation.runner import benches as all_benches
from longhorizon.evaluation.stats import Estimate, bootstrap_mean

__all__ = [
    "Answers",
    "CellScores",
    "Comparison",
    "StudyAnalysis",
    "analyse",
    "check_mean_scored",
    "read_cell",
]


# A model that gives one answer to this share of a bench's answered items has collapsed: its
# score is what that answer earns (below MIN_ANSWERS answers, no verdict).
COLLAPSED_SHARE = 0.5
MIN_ANSWERS = 10


@dataclass(frozen=True)
class Answers:
    """How varied a cell's answers to one bench are (non-empty predictions, every seed)."""

    answered: int
    distinct: int
    top: str  # the most frequent answer
    top_count: int

    @property
    def top_share(self) -> float:
        return self.top_count / self.answered if self.answered else 0.0

    @property
    def collapsed(self) -> bool:
        return self.answered >= MIN_ANSWERS and self.top_share >= COLLAPSED_SHARE


@dataclass(frozen=True)
class CellScores:
    """One cell's item scores per bench, how varied its answers are, and the files."""

    cell: Cell
    eval_dir: Path
    scores: dict[str, dict[str, float]]  # bench -> item id -> score
    files: dict[str, list[Path]]
    answers: dict[str, Answers] = field(default_factory=dict)

    def estimate(self, bench: str) -> Estimate:
        return bootstrap_mean(list(self.scores[bench].values()))


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline: the two-level bootstrap of paired differences."""

    variant: str
    boot: Bootstrap
    items: list[list[int]]  # [seed][bench]: paired items
    p_holm: float | None = None  # of the average, when the study has > 1 comparison

    def significant(self, bench: int | None = None) -> bool:
        low, high = self.boot.interval(bench)
        return low > 0 or high < 0


@dataclass(frozen=True)
class StudyAnalysis:
    baseline: str
    seeds: list[int]
    benches: list[str]
    cells: list[CellScores]
    scores: dict[str, Bootstrap]  # variant -> its own scores
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        return list(self.scores)


def check_mean_scored(bench: str) -> None:
    """Refuse a bench whose headline is not an item mean (its items cannot be paired)."""
    known = all_benches()
    if bench not in known:
        raise ValueError(f"unknown bench {bench!r}")
    if known[bench].metrics[0].parts != ACCURACY.parts:
        raise ValueError(
            f"{bench}: its headline metric ({known[bench].primary}) is not a mean of item "
            "scores, so a study cannot pair its items; leave it out of eval.extra_benches"
        )


def read_cell(cell: Cell, eval_dir: Path, benches: list[str]) -> CellScores:
    scores: dict[str, dict[str, float]] = {}
    files: dict[str, list[Path]] = {}
    answers: dict[str, Answers] = {}
    for bench in benches:
        by_seed = read_seeds(eval_dir / bench)
        ids, num, _ = seed_averaged(ACCURACY, by_seed)
        if not ids:
            raise ValueError(f"{cell.name}: no scored items of {bench} in {eval_dir}")
        scores[bench] = dict(zip(ids, num[:, 0].tolist(), strict=True))
        files[bench] = [items_path(eval_dir / bench, s) for s in sorted(by_seed)]
        said = [(r.prediction or "").strip() for items in by_seed.values() for r in items.values()]
        answers[bench] = _answers([x for x in said if x])
    return CellScores(cell, eval_dir, scores, files, answers)


def _answers(said: list[str]) -> Answers:
    counts = Counter(said)
    top, count = counts.most_common(1)[0] if counts else ("", 0)
    return Answers(len(said), len(counts), top, count)


def analyse(cells: list[CellScores], baseline: str, benches: list[str]) -> StudyAnalysis:
    """Every variant's scores, and every other variant against the baseline (Holm-adjusted
    over the comparisons of the average when there are more than one)."""
    seeds = sorted({c.cell.seed for c in cells})
    grid = {(c.cell.variant, c.cell.seed): c for c in cells}
    variants = list(dict.fromkeys(c.cell.variant for c in cells))
    scores = {
        v: two_level_bootstrap(
            [[list(grid[v, s].scores[b].values()) for b in benches] for s in seeds]
        )
        for v in variants
    }
    compared = [
        _compare(v, [(grid[v, s], grid[baseline, s]) for s in seeds], benches)
        for v in variants
        if v != baseline
    ]
    if len(compared) > 1:
        adjusted = holm([c.boot.p_value() for c in compared])
        compared = [
            Comparison(c.variant, c.boot, c.items, p)
            for c, p in zip(compared, adjusted, strict=True)
        ]
    return StudyAnalysis(baseline, seeds, benches, cells, scores, compared)


def paired_differences(a: CellScores, b: CellScores, bench: str) -> list[float]:
    """a - b on the items both scored, in a's order."""
    other = b.scores[bench]
    return [score - other[i] for i, score in a.scores[bench].items() if i in other]


def _compare(
    variant: str, pairs: list[tuple[CellScores, CellScores]], benches: list[str]
) -> Comparison:
    groups = [[paired_differences(a, b, bench) for bench in benches] for a, b in pairs]
    for (a, _), by_bench in zip(pairs, groups, strict=True):
        for bench, diffs in zip(benches, by_bench, strict=True):
            if not diffs:
                raise ValueError(f"{a.cell.name}: no {bench} items in common with the baseline")
    items = [[len(d) for d in by_bench] for by_bench in groups]
    return Comparison(variant, two_level_bootstrap(groups), items)
