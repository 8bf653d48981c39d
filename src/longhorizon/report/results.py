"""The results table: each bench's pooled score per stage, the average, and distilled - sft.

Columns are base, sft, the teacher of the bench's own domain, and distilled; each cell is the
pooled Estimate of the bench's primary metric (mean and 95% interval). The last column is the
paired difference distilled - sft on the per-item scores (`ItemResult.score`), where both
models have items: each item's score is averaged over the seeds both models ran, only items
answered under all of those seeds on both sides count, and `stats.paired_difference`
resamples items jointly. Items enter in sorted id order so the interval is reproducible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from longhorizon.domains import registry
from longhorizon.evaluation.metrics import scored_by_seed
from longhorizon.evaluation.stats import Estimate, paired_difference
from longhorizon.report.data import TEACHER_PREFIX, BySeed, EvalBench, RunData
from longhorizon.training.teach import GENERALIST

COLUMNS = ("base", "sft", "teacher", "distilled")
COLUMN_TITLES = {
    "base": "base",
    "sft": "sft",
    "teacher": "teacher (own domain)",
    "distilled": "distilled",
}
DIFF = "diff"
DIFF_TITLE = "distilled - sft (paired)"
AVERAGE = "average"


@dataclass(frozen=True)
class ResultRow:
    domain: str
    bench: str
    metric: str
    cells: dict[str, Estimate | None]  # column -> pooled estimate (None: no result)
    diff: Estimate | None  # distilled - sft, paired over items
    counts: dict[str, int]  # benches behind each column (and DIFF): 0/1, or k in the average


@dataclass(frozen=True)
class ResultsTable:
    rows: list[ResultRow]
    average: ResultRow | None  # None when no bench has any result
    present: dict[str, bool]  # column -> any model of that column was evaluated at all

    @property
    def n_benches(self) -> int:
        return len(self.rows)


def bench_domain(run: RunData, bench: str) -> str:
    """The domain a bench measures (whose teacher is the 'own domain' teacher): the registered
    domain whose held-out or extra bench it is, else the result's info, else the one teacher
    that was evaluated on it."""
    spec = registry.by_bench(bench)
    if spec is not None:
        return spec.name
    evals = run.evals or {}
    for label in ("base", "sft", "distilled"):
        entry = evals.get(label, {}).get(bench)
        if entry is not None and isinstance(entry.result.info.get("domain"), str):
            return str(entry.result.info["domain"])
    teachers = [lab for lab, benches in evals.items() if lab.startswith(TEACHER_PREFIX)]
    owners = [lab for lab in teachers if bench in evals[lab]]
    return owners[0].removeprefix(TEACHER_PREFIX) if len(owners) == 1 else "-"


def _column_label(column: str, domain: str) -> str:
    return f"{TEACHER_PREFIX}{domain}" if column == "teacher" else column


def build_results(run: RunData) -> ResultsTable:
    """One row per bench any model was evaluated on (sorted by domain, bench), plus average."""
    evals = run.evals or {}
    benches = sorted({b for results in evals.values() for b in results})
    rows = sorted((_row(run, b) for b in benches), key=lambda r: (r.domain, r.bench))
    present = {
        c: any(lab.startswith(TEACHER_PREFIX) for lab in evals) if c == "teacher" else c in evals
        for c in COLUMNS
    }
    return ResultsTable(rows, _average_row(run, rows) if rows else None, present)


def _row(run: RunData, bench: str) -> ResultRow:
    evals = run.evals or {}
    domain = bench_domain(run, bench)
    entries = {c: evals.get(_column_label(c, domain), {}).get(bench) for c in COLUMNS}
    if entries["teacher"] is None:  # a generalist teacher is every domain's own teacher
        entries["teacher"] = evals.get(f"{TEACHER_PREFIX}{GENERALIST}", {}).get(bench)
    found = [e for e in entries.values() if e is not None]
    metric = found[0].result.primary if found else "-"
    cells = {c: (e.result.pooled if e is not None else None) for c, e in entries.items()}
    diff = _paired(entries["distilled"], entries["sft"])
    counts = {c: int(e is not None) for c, e in cells.items()} | {DIFF: int(diff is not None)}
    return ResultRow(domain, bench, metric, cells, diff, counts)


def paired_items(a: BySeed, b: BySeed) -> tuple[list[str], list[float], list[float]]:
    """Item ids (sorted) and each side's score averaged over the seeds both sides ran (items
    scored on both; an unscored one, whose judge was absent or failed, is no pair)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return [], [], []
    a, b = scored_by_seed(a), scored_by_seed(b)
    groups = [a[s] for s in seeds] + [b[s] for s in seeds]
    ids = sorted(set(groups[0]).intersection(*groups[1:]))
    score_a = [float(np.mean([a[s][i].score for s in seeds])) for i in ids]
    score_b = [float(np.mean([b[s][i].score for s in seeds])) for i in ids]
    return ids, score_a, score_b


def evaluated_items(entry: EvalBench) -> BySeed:
    """The items of the seeds the result covers (an items file of another run's seed is not)."""
    return {s: items for s, items in entry.items.items() if s in entry.result.seeds}


def _paired(a: EvalBench | None, b: EvalBench | None) -> Estimate | None:
    if a is None or b is None:
        return None
    ids, score_a, score_b = paired_items(evaluated_items(a), evaluated_items(b))
    return paired_difference(score_a, score_b) if ids else None


def average_estimate(estimates: list[Estimate]) -> Estimate:
    """Unweighted mean over benches; the interval assumes independent benches.

    Each side of the interval is the per-bench distances to the mean added in quadrature and
    divided by the number of benches (the standard error of a mean of independent means),
    kept separately for low and high because percentile intervals are not symmetric.
    """
    k = len(estimates)
    mean = sum(e.mean for e in estimates) / k
    below = math.sqrt(sum((e.mean - e.low) ** 2 for e in estimates)) / k
    above = math.sqrt(sum((e.high - e.mean) ** 2 for e in estimates)) / k
    return Estimate(mean, mean - below, mean + above, sum(e.n for e in estimates))


def _usable(estimate: Estimate) -> bool:
    # An empty estimate (no items: NaN) would make the whole average NaN.
    return estimate.n > 0 and not math.isnan(estimate.mean)


def _average_row(run: RunData, rows: list[ResultRow]) -> ResultRow:
    cells: dict[str, Estimate | None] = {}
    counts: dict[str, int] = {}
    for column in COLUMNS:
        usable = [e for r in rows if (e := r.cells[column]) is not None and _usable(e)]
        cells[column] = average_estimate(usable) if usable else None
        counts[column] = len(usable)
    diff, counts[DIFF] = _average_diff(run, rows)
    return ResultRow(AVERAGE, "", "", cells, diff, counts)


def _average_diff(run: RunData, rows: list[ResultRow]) -> tuple[Estimate | None, int]:
    """distilled - sft on the average over the benches where both have paired items.

    Every item's scores are weighted by N / (K * n_b) (N paired items in all, K benches,
    n_b items of its bench), so the mean of the weighted differences is exactly the mean
    over benches of each bench's mean difference: every bench counts once, as in the
    average row, however many items it has. The bootstrap then resamples all items.
    """
    evals = run.evals or {}
    per_bench: list[tuple[list[float], list[float]]] = []
    for row in rows:
        sft, dist = evals.get("sft", {}).get(row.bench), evals.get("distilled", {}).get(row.bench)
        if sft is None or dist is None:
            continue
        ids, score_d, score_s = paired_items(evaluated_items(dist), evaluated_items(sft))
        if ids:
            per_bench.append((score_d, score_s))
    if not per_bench:
        return None, 0
    total, k = sum(len(d) for d, _ in per_bench), len(per_bench)
    weighted_d: list[float] = []
    weighted_s: list[float] = []
    for score_d, score_s in per_bench:
        weight = total / (k * len(score_d))
        weighted_d += [x * weight for x in score_d]
        weighted_s += [x * weight for x in score_s]
    return paired_difference(weighted_d, weighted_s), k


def format_estimate(estimate: Estimate | None, *, missing: str = "-") -> str:
    """'mean [low, high]' with 3 decimals; `missing` when there is no estimate."""
    if estimate is None:
        return missing
    if estimate.n == 0 or math.isnan(estimate.mean):
        return "n/a (no items)"
    return str(estimate)


def table_cells(table: ResultsTable) -> tuple[list[str], list[list[str]]]:
    """Header and rows as strings: what the markdown, HTML and console tables all show.

    A column whose model was never evaluated reads 'missing'; a model that exists but was
    not run on a bench reads '-'; an average over fewer benches than the table has says so.
    """
    header = ["domain", "bench", "metric", *(COLUMN_TITLES[c] for c in COLUMNS), DIFF_TITLE]
    rows: list[list[str]] = []
    for row in table.rows:
        cells = [
            format_estimate(row.cells[c], missing="-" if table.present[c] else "missing")
            for c in COLUMNS
        ]
        rows.append([row.domain, row.bench, row.metric, *cells, format_estimate(row.diff)])
    if table.average is not None:
        rows.append(_average_cells(table, table.average))
    return header, rows


def _average_cells(table: ResultsTable, avg: ResultRow) -> list[str]:
    cells = [
        _partial(
            format_estimate(avg.cells[c], missing="-" if table.present[c] else "missing"),
            avg.cells[c],
            avg.counts[c],
            table.n_benches,
        )
        for c in COLUMNS
    ]
    diff = _partial(format_estimate(avg.diff), avg.diff, avg.counts[DIFF], table.n_benches)
    return [AVERAGE, "", "", *cells, diff]


def _partial(text: str, estimate: Estimate | None, count: int, total: int) -> str:
    # An average over fewer benches than the table lists is not comparable: say so.
    return f"{text} ({count}/{total} benches)" if estimate is not None and count < total else text
