"""`longhorizon models`: short model names and where they resolve."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.models.registry import SHORT_NAMES, resolve_model

console = Console()
app = typer.Typer(help="List and build the built-in models.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def list_models(ctx: typer.Context) -> None:
    """List short model names, what they are and where they resolve."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="longhorizon models")
    for column in ("name", "description", "path", "built"):
        table.add_column(column)
    for entry in SHORT_NAMES.values():
        path = entry.path()
        built = "yes" if (path / "config.json").exists() else "on first use"
        table.add_row(entry.name, entry.description, str(path), built)
    console.print(table)
    console.print("Any local checkpoint directory or hub id also works wherever a model is asked.")


@app.command("build")
def build(name: str = typer.Argument(..., help="a short name, e.g. smollm2-135m")) -> None:
    """Build (convert or create) a built-in model now and print its directory."""
    if name not in SHORT_NAMES:
        raise typer.BadParameter(f"unknown short name {name!r}; known: {', '.join(SHORT_NAMES)}")
    console.print(resolve_model(name))
