"""`longhorizon store`: inspect and export trajectory stores."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.core import TrajectoryStore
from longhorizon.core.store import SHARD_GLOB

console = Console()
app = typer.Typer(help="Inspect and export trajectory stores (directories of JSONL shards).")


@app.command("stats")
def stats(root: Path = typer.Argument(..., exists=True, file_okay=False)) -> None:
    """Counts by domain and status, pass rate and token totals."""
    rows: Counter[tuple[str, str]] = Counter()
    passed: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    if not any(root.glob(SHARD_GLOB)):
        raise typer.BadParameter(f"{root} holds no trajectory shards ({SHARD_GLOB}): not a store")
    for traj in TrajectoryStore(root):
        rows[(traj.domain, traj.status.value)] += 1
        passed[traj.domain] += traj.passed
        tokens[traj.domain] += sum(len(s) for s in traj.token_sequences())
    table = Table(title=f"trajectories in {root}")
    for column in ("domain", "status", "count"):
        table.add_column(column)
    for (domain, status), count in sorted(rows.items()):
        table.add_row(domain, status, str(count))
    console.print(table)
    for domain in sorted(passed):
        console.print(f"{domain}: {passed[domain]} passed, {tokens[domain]} tokens")


@app.command("export")
def export(
    root: Path = typer.Argument(..., exists=True, file_okay=False),
    out: Path = typer.Option(..., "--out", help="Parquet file to write"),
) -> None:
    """Export a store to one Parquet file (ids, summaries, token ids, masks, full JSON)."""
    console.print(TrajectoryStore(root).to_parquet(out))
