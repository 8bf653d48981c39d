"""`longhorizon kag`: inspect a knowledge-action graph."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.kag import KnowledgeActionGraph

console = Console()
HEADERS = {
    "nodes": ("domain", "type"),
    "edges": ("domain", "type"),
    "tasks": ("domain", "status"),
    "rejections": ("domain", "reason"),
    "actions": ("domain", "kind"),
    "step verdicts": ("domain", "v_t"),
    "trajectories": ("domain", "role", "status"),
}
app = typer.Typer(help="Inspect knowledge-action graphs (SQLite files or PostgreSQL DSNs).")


@app.command("stats")
def stats(db: str = typer.Argument(..., help="SQLite file or postgresql:// DSN")) -> None:
    """Counts of nodes and edges by type and domain, tasks by status and rejection reason."""
    if "://" not in db and not Path(db).exists():
        raise typer.BadParameter(f"{db} does not exist")
    with KnowledgeActionGraph(db) as kag:
        counts = kag.stats()
    for name, counter in counts.items():
        if not counter:
            continue
        table = Table(title=name)
        for column in HEADERS[name]:
            table.add_column(column)
        table.add_column("count", justify="right")
        for key, count in sorted(counter.items()):
            table.add_row(*key, str(count))
        console.print(table)
