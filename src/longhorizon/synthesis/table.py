"""The synthesis report as a terminal table (`longhorizon synth` and the pipeline print it)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from longhorizon.core.benchmarks import benchmarks_off
from longhorizon.synthesis.decontam import AUDIT_OFF
from longhorizon.synthesis.selfplay import SynthReport

__all__ = ["print_report"]


def print_report(report: SynthReport, console: Console | None = None) -> None:
    console = console or Console()
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
    table.add_row("longest model turn (tokens)", str(report.longest_turn))
    hits = AUDIT_OFF if benchmarks_off() else str(len(report.contamination))
    table.add_row("decontamination hits", hits)
    table.add_row("wall s", f"{report.wall_s:.1f}")
    console.print(table)
    if report.exhausted:
        console.print(
            f"[yellow]the proposer ran out of new tasks after {report.accepted} accepted: "
            "this level (or corpus) has no more to give; widen it or ask for fewer[/yellow]"
        )
    for hit in report.contamination[:10]:
        console.print(
            f"  contaminated: {hit.item_id} overlaps {hit.source} ({hit.shared_ngrams} 13-grams)"
        )
