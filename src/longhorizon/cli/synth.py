"""`longhorizon synth`: self-play task synthesis for a domain, with an acceptance report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.core.benchmarks import benchmarks_off
from longhorizon.domains.instruction.level import InstructionLevel, parse_level
from longhorizon.synthesis import SynthReport
from longhorizon.synthesis.decontam import AUDIT_OFF
from longhorizon.synthesis.run import DOMAINS, run_synthesis

console = Console()


def synth(
    domain: str = typer.Option(..., help=f"one of: {', '.join(DOMAINS)}"),
    n: int = typer.Option(200, min=1, help="accepted tasks wanted"),
    out: Path = typer.Option(..., help="output dir: tasks/, trajectories/, kag.db, report"),
    model: str | None = typer.Option(
        None,
        help="LLM for proposer-free roles (solver, no-tool "
        "attempt); default: the domain's scripted expert",
    ),
    tokenizer: str = typer.Option("tiny-llama", help="tokenizer the token records use"),
    seed: int = typer.Option(0),
    concurrency: int = typer.Option(8, min=1),
    entities: int = typer.Option(3000, min=50, help="search: encyclopedia size"),
    instruction_level: str | None = typer.Option(
        None, help='instruction: JSON, e.g. {"max_instructions": 1, "max_response_chars": 600}'
    ),
    kag: str | None = typer.Option(None, help="KAG DSN (default: OUT/kag.db)"),
    eval_set: list[Path] = typer.Option([], help="extra evaluation files for the audit"),
) -> None:
    """Propose, solve, verify and keep tasks until N are accepted; print the report."""
    if domain not in DOMAINS:
        raise typer.BadParameter(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    out.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(
        run_synthesis(
            domain,
            n,
            out,
            model=model,
            tokenizer=tokenizer,
            seed=seed,
            concurrency=concurrency,
            entities=entities,
            instruction_level=cli_level(instruction_level),
            kag_dsn=kag,
            eval_sets=eval_set,
        )
    )
    print_report(report)
    console.print(
        f"tasks: {out / 'tasks'}  trajectories: {out / 'trajectories'}  "
        f"report: {out / 'synth_report.json'}"
    )


def cli_level(text: str | None) -> InstructionLevel:
    """--instruction-level, with a bad value reported as a usage error (exit 2)."""
    try:
        return parse_level(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def print_report(report: SynthReport) -> None:
    summary = report.summary()
    table = Table(title=f"synthesis: {report.domain}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("accepted / wanted", f"{report.accepted} / {report.wanted}")
    table.add_row("proposed (this run)", str(report.proposed))
    table.add_row("skipped (already in the KAG)", str(report.skipped_known))
    table.add_row("proposer found no task", str(report.proposer_empty))
    for reason, count in sorted(report.rejected.items()):
        table.add_row(f"rejected: {reason}", str(count))
    table.add_row("avg turns (accepted)", f"{summary['avg_turns']:.2f}")
    table.add_row("avg tokens (accepted)", f"{summary['avg_tokens']:.0f}")
    hits = AUDIT_OFF if benchmarks_off() else str(len(report.contamination))
    table.add_row("decontamination hits", hits)
    table.add_row("wall s", f"{report.wall_s:.1f}")
    console.print(table)
    for hit in report.contamination[:10]:
        console.print(
            f"  contaminated: {hit.item_id} overlaps {hit.source} ({hit.shared_ngrams} 13-grams)"
        )
