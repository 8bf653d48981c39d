"""`longhorizon kag`: inspect a knowledge-action graph."""

from __future__ import annotations

import contextlib
import sqlite3
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
    if "://" not in db:
        _check_sqlite_kag(Path(db))
    with KnowledgeActionGraph(db) as kag:
        counts = kag.stats()
    if not any(counts.values()):
        console.print(f"{db}: an empty knowledge-action graph")
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


def _check_sqlite_kag(path: Path) -> None:
    """A SQLite file that holds a graph, read-only: opening any other file as a graph would
    write the schema into it."""
    if not path.is_file():
        raise typer.BadParameter(
            f"{path} does not exist" if not path.exists() else f"{path} is not a file"
        )
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as exc:
        raise typer.BadParameter(f"{path} is not a SQLite database ({exc})") from None
    if "nodes" not in tables:
        raise typer.BadParameter(f"{path} is not a knowledge-action graph (no nodes table)")
