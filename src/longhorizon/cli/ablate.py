"""`longhorizon ablate STUDY.yaml`: variants x seeds of a recipe, with paired intervals."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longhorizon.cli.errors import usage_error

console = Console()


def ablate(
    study_file: Path = typer.Argument(..., help="a study file (see studies/)", dir_okay=False),
    out: Path | None = typer.Option(None, help="study folder (default: runs/ablate/<name>)"),
    seeds: str | None = typer.Option(
        None, help="comma-separated seeds instead of the study's own (e.g. 0,1)"
    ),
    variants: str | None = typer.Option(
        None, help="comma-separated variants to run (the baseline is always kept)"
    ),
    reuse: list[Path] = typer.Option(
        [],
        help="a finished `longhorizon run` folder whose stages that match a cell's (same "
        "content key) are copied in instead of run; repeatable",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="resolve and validate every cell, print the grid, run nothing"
    ),
) -> None:
    """Run a study: shared stages once, every cell resumably; one table, one plot, one JSON."""
    # Imported here: the study runner loads torch and matplotlib, other commands need not.
    from longhorizon.ablate import (
        StudyError,
        load_study,
        plan_study,
        print_grid,
        reuse_matches,
        run_study,
        with_seeds,
        with_variants,
    )

    if not study_file.is_file():
        raise typer.BadParameter(f"no study file {study_file}")
    try:
        study, base = load_study(study_file)
        if out is not None:
            study = study.model_copy(update={"out": out})
        if seeds is not None:
            study = with_seeds(study, _seeds(seeds), study_file)
        if variants is not None:
            names = tuple(v.strip() for v in variants.split(",") if v.strip())
            study = with_variants(study, names, study_file)
        planned, benches = plan_study(study, base)
        matches = reuse_matches(tuple(reuse), planned)
    except StudyError as exc:
        usage_error(str(exc))
    if dry_run:
        print_grid(planned, study.out_dir(), console)
        for stage in matches:
            console.print(f"reuse: {stage.key} <- {stage.source}")
        console.print(f"benches: {', '.join(benches)}; baseline: {study.baseline_name}")
        console.print("[green]study valid[/green]")
        return
    run_study(study, base, console, tuple(reuse))


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise typer.BadParameter(f"--seeds {text!r}: give integers separated by commas") from None
