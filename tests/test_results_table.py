"""The pipeline's final results table reads whole at 80 columns."""

from __future__ import annotations

from rich.console import Console

from longhorizon.evaluation.stats import Estimate
from longhorizon.evaluation.types import BenchResult, MetricResult
from longhorizon.pipeline.run import results_table

BENCHES = ["search-heldout", "instruction-heldout", "ifeval", "molbench"]


def _result(bench: str, mean: float) -> BenchResult:
    est = Estimate(mean=mean, low=mean - 0.05, high=mean + 0.05, n=50)
    metric = MetricResult(name="accuracy", per_seed={0: est}, pooled=est)
    return BenchResult(
        bench=bench, model="m", seeds=[0], primary="accuracy", metrics={"accuracy": metric}
    )


def _render(width: int) -> list[str]:
    everything = {b: _result(b, 0.25 + 0.125 * i) for i, b in enumerate(BENCHES)}
    results = {
        "base": everything,
        "sft": everything,
        "teacher-search": {"search-heldout": _result("search-heldout", 0.5)},
        "teacher-instruction": {"instruction-heldout": _result("instruction-heldout", 0.75)},
        "distilled": everything,
    }
    console = Console(width=width, record=True)
    console.print(results_table("agents-a1", results, BENCHES))
    return console.export_text().splitlines()


def test_every_name_and_number_reads_whole_at_80_columns() -> None:
    lines = _render(80)
    text = "\n".join(lines)
    assert "…" not in text
    assert max(len(line) for line in lines) <= 80
    for name in ["teacher-search", "teacher-instruction", "distilled", *BENCHES]:
        assert name in text, name
    row = next(line for line in lines if "teacher-instruction" in line)
    assert "instruction-heldout" in row and "0.750" in row and "[0.700, 0.800]" in row
    assert "agents-a1: held-out results (mean [95% CI])" in text


def test_rows_are_the_benches_each_stage_ran_with_an_average() -> None:
    lines = _render(80)
    assert lines[2].split("┃")[1:-1] == [
        " stage               ",
        " bench               ",
        "  mean ",
        " 95% CI         ",
        " trunc ",
    ]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if line[0] == "│"]
    assert [c[:3] for c in cells[:5]] == [
        ["base", "search-heldout", "0.250"],
        ["", "instruction-heldout", "0.375"],
        ["", "ifeval", "0.500"],
        ["", "molbench", "0.625"],
        ["", "average", "0.438"],  # (0.25 + 0.375 + 0.5 + 0.625) / 4
    ]
    # A teacher ran on its own domain only: one row, no average.
    assert [c for c in cells if c[0].startswith("teacher-")] == [
        ["teacher-search", "search-heldout", "0.500", "[0.450, 0.550]", "0%"],
        ["teacher-instruction", "instruction-heldout", "0.750", "[0.700, 0.800]", "0%"],
    ]
    assert len(cells) == 17  # 3 stages x (4 benches + average) + 2 teacher rows
