"""`longhorizon distill`: Stage-3 multi-teacher on-policy distillation (SVA by default)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console()


def distill(
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="YAML DistillConfig"),
) -> None:
    """Roll out the student, score its tokens with each domain's teacher, train on the loss."""
    from longhorizon.distill.opd import load_distill_config, run_distill
    from longhorizon.distill.teachers import TeacherError

    cfg = load_distill_config(config)
    console.print(cfg.model_dump(mode="json"))
    try:
        final = run_distill(cfg)
    except TeacherError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"distilled student: {final}")
