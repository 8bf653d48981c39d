"""`longhorizon sft` and `longhorizon teach`: the training stages, driven by YAML configs.

Options are not copied from the config classes: `--set KEY=VALUE` overrides any field of the
YAML file (dotted for nested fields, e.g. `--set data.overlong=drop`), and `--dry-run` prints
the resolved config. Under torchrun every rank runs the same command:
    torchrun --nproc_per_node=2 -m longhorizon.cli.main sft --config C --set parallel=ddp
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from longhorizon.cli.config_options import CONFIG, DRY_RUN, SET, resolve_config

console = Console()


def sft(config: Path = CONFIG, overrides: list[str] = SET, dry_run: bool = DRY_RUN) -> None:
    """Stage-1 SFT on stored trajectories (packed, resumable, single process or torchrun)."""
    from longhorizon.training.config import SFTConfig
    from longhorizon.training.sft import run_sft

    cfg = resolve_config(SFTConfig, config, overrides)
    if dry_run:
        console.print(cfg.to_yaml(), markup=False, highlight=False)
        return
    result = run_sft(cfg, console)
    if _is_main_process():
        console.print(f"SFT done: {result.steps} steps; final model {result.final_dir}")


def teach(
    domain: str = typer.Option(..., help="the teacher's domain (its data is filtered to it)"),
    config: Path = CONFIG,
    overrides: list[str] = SET,
    dry_run: bool = DRY_RUN,
) -> None:
    """Stage-2 domain teacher: SFT stages from a base or SFT checkpoint, then optionally GRPO
    (`grpo:` in the config) from the last SFT stage's model."""
    from longhorizon.pipeline.teachers import TeachRun, train_teacher
    from longhorizon.training.teach import stage_configs

    cfg = resolve_config(TeachRun, config, overrides, {"domain": domain})
    rl = cfg.rl_config()
    if dry_run:
        shown: list[tuple[Path, str]] = [
            (c.output_dir, c.to_yaml()) for c in stage_configs(cfg, Path(rl.model) if rl else None)
        ]
        if rl is not None:
            shown.append((rl.output_dir, rl.to_yaml()))
        for folder, text in shown:
            console.rule(str(folder))
            console.print(text, markup=False, highlight=False)
        return
    path = train_teacher(cfg, rl, console)
    if _is_main_process():
        console.print(f"teacher for {domain}: {path}")


def _is_main_process() -> bool:
    """Rank 0 under torchrun (every rank runs the command), or a plain process."""
    return os.environ.get("RANK", "0") == "0"
