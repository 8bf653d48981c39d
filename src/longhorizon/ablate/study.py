"""A study file: a base recipe, variants (`--set`-style overrides on it) and seeds.

```yaml
name: loss
recipe: tiny                 # a built-in recipe, or a file (relative to this one)
set: [distill.steps=30]      # applied to every variant, before its own
seeds: [0, 1, 2]             # each cell's recipe `seed` (synthesis, training, held-out world)
baseline: sva_tail           # default: the first variant
variants:
  sva_tail: [distill.loss.kind=sva_tail]
  sva: [distill.loss.kind=sva]
  sft: {set: [], model: sft} # `model`: which evaluated model is scored (default distilled)
```

The grid is variants x seeds; a cell is one (variant, seed) with its resolved `Recipe`.
Everything a cell needs is resolved and validated before anything runs (`resolve_cells`), so a
bad study file fails as a whole, with every problem named, and touches no result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
    field_validator,
)

from longhorizon.pipeline.recipe import Recipe, find_recipe
from longhorizon.training.config import apply_override

__all__ = [
    "Cell",
    "Study",
    "StudyError",
    "Variant",
    "load_study",
    "resolve_cells",
    "with_seeds",
    "with_variants",
]

DEFAULT_MODEL = "distilled"


class StudyError(ValueError):
    """A study file that cannot run; the message names every problem found."""


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    set: tuple[str, ...] = ()
    model: str = Field(default=DEFAULT_MODEL, description="base, sft, teacher-<domain>, distilled")


class Study(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    recipe: str
    set: tuple[str, ...] = ()
    seeds: tuple[NonNegativeInt, ...] = (0,)
    baseline: str | None = None
    variants: dict[str, Variant]
    out: Path | None = Field(default=None, description="default: runs/ablate/<name>")

    @field_validator("variants", mode="before")
    @classmethod
    def _lists_are_overrides(cls, value: Any) -> Any:
        """`name: [a=1, b=2]` is short for `name: {set: [a=1, b=2]}`."""
        if not isinstance(value, dict):
            return value
        return {k: {"set": v} if isinstance(v, list) else (v or {}) for k, v in value.items()}

    @property
    def baseline_name(self) -> str:
        return self.baseline or next(iter(self.variants))

    def out_dir(self) -> Path:
        return self.out or Path("runs/ablate") / self.name


@dataclass(frozen=True)
class Cell:
    """One (variant, seed) of the grid: its resolved recipe and the model it scores."""

    variant: str
    seed: int
    model: str
    recipe: Recipe

    @property
    def name(self) -> str:
        return f"{self.variant}/seed{self.seed}"


def load_study(path: Path) -> tuple[Study, dict[str, Any]]:
    """The study and its base recipe's YAML tree (resolved relative to the study file)."""
    try:
        data = yaml.safe_load(path.read_text())
        study = Study.model_validate(data)
    except (yaml.YAMLError, ValidationError) as exc:
        raise StudyError(f"{path}: {exc}") from None
    _check_grid(study, path)
    try:
        recipe_path = find_recipe(study.recipe, relative_to=path.parent)
    except ValueError as exc:
        raise StudyError(f"{path}: {exc}") from None
    tree = yaml.safe_load(recipe_path.read_text())
    if not isinstance(tree, dict):
        raise StudyError(f"{recipe_path}: a recipe must be a YAML mapping")
    return study, tree


def with_seeds(study: Study, seeds: tuple[int, ...], path: Path) -> Study:
    """The study on other seeds (`--seeds 0,1`), checked like the file's own."""
    changed = study.model_copy(update={"seeds": seeds})
    _check_grid(changed, path)
    return changed


def with_variants(study: Study, names: tuple[str, ...], path: Path) -> Study:
    """The study on some of its variants (`--variants a,b`); the baseline always stays in,
    since every difference is taken against it."""
    unknown = [n for n in names if n not in study.variants]
    if unknown:
        known = ", ".join(study.variants)
        raise StudyError(f"{path}: no variant {', '.join(map(repr, unknown))}; known: {known}")
    keep = {study.baseline_name, *names}
    variants = {n: v for n, v in study.variants.items() if n in keep}
    changed = study.model_copy(update={"variants": variants, "baseline": study.baseline_name})
    _check_grid(changed, path)
    return changed


def _check_grid(study: Study, path: Path) -> None:
    problems = []
    if len(study.variants) < 2:
        problems.append("a study compares variants against its baseline: give at least two")
    if not study.seeds:
        problems.append("`seeds` is empty: the grid has no cells")
    if len(set(study.seeds)) != len(study.seeds):
        problems.append(f"`seeds` repeats a seed: {list(study.seeds)}")
    if study.baseline is not None and study.baseline not in study.variants:
        problems.append(f"baseline {study.baseline!r} is not a variant: {list(study.variants)}")
    if problems:
        raise StudyError(f"{path}: " + "; ".join(problems))


def resolve_cells(study: Study, base: dict[str, Any]) -> list[Cell]:
    """Every cell's recipe (seed-major order: all variants of a seed come together), or a
    StudyError naming every variant whose overrides do not resolve."""
    cells, problems = [], []
    for seed in study.seeds:
        for name, variant in study.variants.items():
            try:
                recipe = cell_recipe(study, base, variant, seed, name)
            except (ValidationError, ValueError) as exc:
                problems.append(f"variant {name!r} (seed {seed}): {_one_line(exc)}")
                continue
            cells.append(Cell(name, seed, variant.model, recipe))
    if problems:
        raise StudyError("\n".join(dict.fromkeys(problems)))
    return cells


def cell_recipe(
    study: Study, base: dict[str, Any], variant: Variant, seed: int, name: str
) -> Recipe:
    tree = yaml.safe_load(yaml.safe_dump(base))  # a deep copy the overrides may change
    for assignment in (*study.set, *variant.set):
        if assignment.partition("=")[0].strip() in ("seed", "out"):
            raise ValueError(f"{assignment!r}: the study sets each cell's seed and directory")
        apply_override(tree, assignment)
    tree["seed"] = seed
    tree["out"] = str(study.out_dir() / "cells" / name / f"seed{seed}")
    return Recipe.model_validate(tree)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
