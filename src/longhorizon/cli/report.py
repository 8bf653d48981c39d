"""`longhorizon report RUN_DIR`: write RUN/report/report.md and report.html, print the results."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from longhorizon.cli.errors import usage_error

console = Console()


def report(
    run_dir: Path = typer.Argument(..., help="a run directory written by `longhorizon run`"),
    save: Path | None = typer.Option(
        None,
        help="also write SAVE/<recipe>-seed<S>-<commit>/ (summary.json, report.md, recipe.yaml)",
    ),
) -> None:
    """Write the run's Markdown report and self-contained HTML page; print the results."""
    if not run_dir.is_dir():
        what = "is not a directory" if run_dir.exists() else "does not exist"
        usage_error(f"run directory {run_dir} {what}")
    missing = [n for n in ("recipe.yaml", "stages.json") if not (run_dir / n).is_file()]
    if save is not None and missing:  # a saved summary names the run by them
        usage_error(f"--save needs the run's {' and '.join(missing)}")
    # Imported here: matplotlib is only loaded when a report is made, not on every command.
    from longhorizon.report.render import build_report
    from longhorizon.report.results import table_cells

    md_path, html_path, run, table = build_report(run_dir)
    header, rows = table_cells(table)
    results = Table(title=Text(f"{run_dir.name}: results (pooled mean [95% interval])"))
    for column in header:
        results.add_column(column, overflow="fold")  # wrap, never cut a number
    for row in rows:
        results.add_row(*(Text(cell) for cell in row))  # data, never markup
    if rows:
        console.print(results)
    else:
        console.print("[yellow]no evaluation results in this run[/yellow]")
    for note in run.notes:
        console.print(f"[yellow]{escape(note)}[/yellow]", highlight=False)
    console.print(Text(f"markdown: {md_path}\nhtml:     {html_path}"))
    if save is not None:
        from longhorizon.report.summary import save_built

        console.print(Text(f"results:  {save_built(run_dir, table, md_path, save)}"))
