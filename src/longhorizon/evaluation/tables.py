"""Evaluation tables that read whole at 80 columns: a bench heads its rows, metrics indented.

A column each for bench and metric cut "instruction-heldout" and "instruction_level_strict"
to "instruction-he…" and "instruction_le…" on an 80-column terminal; one name column, with
the bench on a row of its own, needs the longest metric name plus two.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.table import Table
from rich.text import Text

from longhorizon.evaluation.compare import Comparison
from longhorizon.evaluation.stats import Estimate
from longhorizon.evaluation.types import BenchResult

__all__ = ["comparison_table", "horizon_table", "results_table"]

NAME = "bench / metric"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(title=title)
    table.add_column(NAME, no_wrap=True)
    for column in columns:
        table.add_column(column, no_wrap=True, justify="left" if "CI" in column else "right")
    return table


def _bench_row(table: Table, bench: str) -> None:
    table.add_row(Text(bench, style="bold"), *[""] * (len(table.columns) - 1))


def _ci(est: Estimate, sign: str = "") -> str:
    return f"[{est.low:{sign}.3f}, {est.high:{sign}.3f}]"


def results_table(model: str, results: dict[str, BenchResult]) -> Table:
    """Per bench and metric: a row per seed, then the pooled row."""
    table = _table(f"{model}: mean [95% CI]", ("seed", "mean", "95% CI", "n"))
    for name, result in results.items():
        _bench_row(table, name)
        for metric in result.metrics.values():
            rows = [(str(s), e) for s, e in sorted(metric.per_seed.items())]
            rows.append(("pooled", metric.pooled))  # with one seed, the same as that seed
            for i, (seed, est) in enumerate(rows):
                label = f"  {metric.name}" if i == 0 else ""
                table.add_row(label, seed, f"{est.mean:.3f}", _ci(est), str(est.n))
        table.add_section()
    return table


def comparison_table(comparisons: Iterable[Comparison], title: str) -> Table:
    """Per bench and metric: the paired difference A - B (* when its interval excludes 0)."""
    table = _table(title, ("seeds", "A - B", "95% CI", "items"))
    bench = None
    for c in comparisons:
        if c.bench != bench:
            if bench is not None:
                table.add_section()
            bench = c.bench
            _bench_row(table, bench)
        d = c.difference
        mark = " *" if c.significant else "  "
        seeds = ",".join(map(str, c.seeds))
        table.add_row(f"  {c.metric}", seeds, f"{d.mean:+.3f}{mark}", _ci(d, "+"), str(d.n))
    return table


def horizon_table(title: str, results: dict[str, BenchResult]) -> Table | None:
    """The long-horizon curve as a table: a row per stage (label -> one bench's result), a
    column per hop count, mean [95% CI] (n); None when no result records hop counts."""
    hops = sorted({h for r in results.values() for h in r.by_hops})
    if not hops:
        return None
    table = Table(title=f"{title}: success by hop count, mean [95% CI] (n)")
    table.add_column("stage", no_wrap=True)
    for h in hops:
        table.add_column(f"{h} hop{'s' if h > 1 else ''}", no_wrap=True)
    table.add_column("truncated", justify="right", no_wrap=True)
    for label, result in results.items():
        cells = [_cell(result.by_hops.get(h)) for h in hops]
        table.add_row(label, *cells, f"{result.truncated_share():.0%}")
    return table


def _cell(est: Estimate | None) -> str:
    if est is None:
        return "-"
    return f"{est.mean:.2f} [{est.low:.2f}, {est.high:.2f}] ({est.n})"
