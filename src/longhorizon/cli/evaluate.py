"""`longhorizon eval`: score benchmarks with error bars."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.synthesis.decontam import default_benchmark_dir

console = Console()


def evaluate(
    bench: str = typer.Option(..., help="benchmark(s), comma-separated: ifeval"),
    out: Path = typer.Option(..., help="output dir: items.jsonl and summary.json"),
    responses: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="score a responses file; no model is run"
    ),
    inputs: Path | None = typer.Option(None, help="benchmark inputs (default: shared data)"),
) -> None:
    """Score a benchmark's responses file (model runs: see `longhorizon eval --help` later)."""
    benches = [b.strip() for b in bench.split(",") if b.strip()]
    if benches != ["ifeval"]:
        raise typer.BadParameter(f"unsupported --bench {bench!r} for a responses file: ifeval")
    if responses is None:
        raise typer.BadParameter("pass --responses FILE (scoring a model run needs --model)")
    score_ifeval_file(
        inputs or default_benchmark_dir() / "ifeval" / "input_data.jsonl", responses, out
    )


def score_ifeval_file(inputs: Path, responses: Path, out: Path) -> None:
    import json

    from longhorizon.verifiers.ifeval.scorer import score_responses, write_items_jsonl

    report = score_responses(inputs, responses)
    out.mkdir(parents=True, exist_ok=True)
    write_items_jsonl(report, out / "items.jsonl")
    summary = {
        name: {"correct": a.correct, "total": a.total, "accuracy": a.value}
        for name, a in report.summary().items()
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    table = Table(title=f"IFEval: {responses.name}")
    for column in ("metric", "accuracy", "correct / total"):
        table.add_column(column)
    for name, acc in report.summary().items():
        table.add_row(name, f"{acc.value:.4f}", f"{acc.correct}/{acc.total}")
    console.print(table)
    console.print(f"items: {out / 'items.jsonl'}  summary: {out / 'summary.json'}")
