"""The `--config` / `--set` / `--dry-run` trio every config-driven command shares.

Options are not copied from the config classes: `--set KEY=VALUE` overrides any field of the
YAML file (dotted for nested fields, e.g. `--set loss.k=32`), and `--dry-run` prints the
resolved config. One place builds them, so `sft`, `teach`, `distill` and `eval` cannot drift.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import typer
import yaml
from pydantic import BaseModel, ValidationError

from longhorizon.training.config import apply_override, read_config_tree

__all__ = ["CONFIG", "DRY_RUN", "OPTIONAL_CONFIG", "SET", "config_yaml", "resolve_config"]

C = TypeVar("C", bound=BaseModel)

CONFIG = typer.Option(..., "--config", exists=True, dir_okay=False, help="YAML config file")
OPTIONAL_CONFIG = typer.Option(
    None, "--config", exists=True, dir_okay=False, help="YAML config file"
)
SET = typer.Option([], "--set", help="override a config field: KEY=VALUE (repeatable)")
DRY_RUN = typer.Option(False, "--dry-run", help="print the resolved config and exit")


def resolve_config(
    cls: type[C], path: Path | None, overrides: list[str], flags: dict[str, Any] | None = None
) -> C:
    """Defaults < the YAML file < `flags` (a command's own options, given explicitly) < `--set`.

    A config that does not validate is a usage error (exit 2) that names the field.
    """
    try:
        tree = read_config_tree(path)
        tree.update(flags or {})
        for assignment in overrides:
            apply_override(tree, assignment)
        return cls.model_validate(tree)
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


def config_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
