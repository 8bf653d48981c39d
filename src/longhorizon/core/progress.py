"""The one progress bar style of long work (rollouts, synthesis, generation)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(enabled: bool = True, *, stats: bool = True) -> Progress:
    """description, bar, done/total, an optional live `stats` field, elapsed time."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
    if stats:
        columns.append(TextColumn("{task.fields[stats]}"))
    return Progress(*columns, TimeElapsedColumn(), disable=not enabled)
