"""`longhorizon rl`: Stage-2 GRPO on harness rollouts, rewarded by the domains' verifier.

longhorizon rl --config rl.yaml [--set objective.clip_high=0.28 ...] [--dry-run]
torchrun --nproc_per_node=2 -m longhorizon.cli.main rl --config rl.yaml --set parallel=ddp
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from longhorizon.cli.config_options import CONFIG, DRY_RUN, SET, config_yaml, resolve_config
from longhorizon.domains import verify
from longhorizon.pipeline.teachers import verdict_kinds
from longhorizon.rl import RLConfig, run_rl

console = Console()


def rl(config: Path = CONFIG, overrides: list[str] = SET, dry_run: bool = DRY_RUN) -> None:
    """Roll out G episodes per prompt, reward them with the verifier, take GRPO steps."""
    cfg = resolve_config(RLConfig, config, overrides)
    if dry_run:
        console.print(config_yaml(cfg), markup=False, highlight=False)
        return
    try:
        final = run_rl(cfg, verify, console, verdict_kinds())
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(f"trained policy: {final}")
