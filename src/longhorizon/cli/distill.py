"""`longhorizon distill`: Stage-3 multi-teacher on-policy distillation (SVA by default).

longhorizon distill --config distill.yaml [--set loss.kind=sva_tail ...] [--dry-run]
torchrun --nproc_per_node=2 -m longhorizon.cli.main distill --config distill.yaml --set parallel=ddp
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longhorizon.cli.config_options import CONFIG, DRY_RUN, SET, config_yaml, resolve_config
from longhorizon.distill.config import DistillConfig
from longhorizon.distill.opd import run_distill
from longhorizon.distill.teachers import TeacherError
from longhorizon.domains import verify

console = Console()


def distill(config: Path = CONFIG, overrides: list[str] = SET, dry_run: bool = DRY_RUN) -> None:
    """Roll out the student, score its tokens with each domain's teacher, train on the loss."""
    cfg = resolve_config(DistillConfig, config, overrides)
    if dry_run:
        console.print(config_yaml(cfg), markup=False, highlight=False)
        return
    try:
        final = run_distill(cfg, verify, console)
    except TeacherError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"distilled student: {final}")
