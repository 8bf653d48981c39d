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

__all__ = ["comparison_table", "results_table"]

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
