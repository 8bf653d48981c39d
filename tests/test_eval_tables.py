"""`longhorizon eval` tables (results, compare) read whole at 80 columns."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from longhorizon.evaluation.compare import Comparison
from longhorizon.evaluation.ifeval import METRICS
from longhorizon.evaluation.stats import Estimate
from longhorizon.evaluation.tables import comparison_table, results_table
from longhorizon.evaluation.types import BenchResult, MetricResult

IFEVAL = [m.name for m in METRICS]  # instruction_level_strict is the longest name


def _render(table: Table) -> list[str]:
    console = Console(width=80, record=True)
    console.print(table)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in "\n".join(lines)
    return lines


def _cells(lines: list[str]) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line[0] == "│"]


def _bench(name: str, metrics: list[str]) -> BenchResult:
    per = {0: Estimate(0.25, 0.125, 0.375, 8), 1: Estimate(0.5, 0.25, 0.75, 8)}
    pooled = Estimate(0.375, 0.25, 0.5, 8)
    by_name = {m: MetricResult(name=m, per_seed=per, pooled=pooled) for m in metrics}
    return BenchResult(bench=name, model="m", seeds=[0, 1], primary=metrics[0], metrics=by_name)


def test_results_table_names_every_bench_and_metric_whole() -> None:
    results = {
        "ifeval": _bench("ifeval", IFEVAL),
        "instruction-heldout": _bench("instruction-heldout", ["pass_rate"]),
    }
    cells = _cells(_render(results_table("distilled", results)))
    assert cells[0] == ["ifeval", "", "", "", ""]
    assert cells[1:4] == [
        ["average_strict", "0", "0.250", "[0.125, 0.375]", "8"],
        ["", "1", "0.500", "[0.250, 0.750]", "8"],
        ["", "pooled", "0.375", "[0.250, 0.500]", "8"],
    ]
    assert [c[0] for c in cells if c[0]] == ["ifeval", *IFEVAL, "instruction-heldout", "pass_rate"]


def test_comparison_table_names_every_bench_and_metric_whole() -> None:
    diff = Estimate(0.25, 0.0625, 0.4375, 4)
    same = Estimate(0.0, -0.25, 0.25, 4)
    comparisons = [Comparison("ifeval", m, [0, 1, 2], diff) for m in IFEVAL]
    comparisons.append(Comparison("instruction-heldout", "pass_rate", [0, 1, 2], same))
    lines = _render(comparison_table(comparisons, "A - B"))
    cells = _cells(lines)
    assert cells[0] == ["ifeval", "", "", "", ""]
    assert cells[3] == ["instruction_level_strict", "0,1,2", "+0.250 *", "[+0.062, +0.438]", "4"]
    assert cells[-2:] == [
        ["instruction-heldout", "", "", "", ""],
        ["pass_rate", "0,1,2", "+0.000", "[-0.250, +0.250]", "4"],
    ]
