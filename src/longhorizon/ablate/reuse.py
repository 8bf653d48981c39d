"""`longhorizon ablate --reuse RUN`: start a study from a finished `longhorizon run`.

A run and a study cell that resolve a stage to the same config compute the same thing, so
the run's finished stage folders can stand in the study's cache. Which ones match is decided
by the same content keys the study shares stages by (keys.py), computed from the run's own
`recipe.yaml`: nothing is matched by name, and a run with any other setting matches nothing
for the stages that setting reaches. Only stages the run's `stages.json` marks finished are
taken; an evaluation is taken when the run's `eval` stage finished. The copy is made beside
its place and renamed into it, then its record is written, so a kill leaves either nothing
or a finished stage. Each record says where it came from and which code version ran it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from longhorizon.ablate.keys import TRAINING_STAGES, cell_keys
from longhorizon.pipeline.recipe import load_recipe
from longhorizon.pipeline.run import StageLog
from longhorizon.pipeline.stages import Layout

__all__ = ["Reusable", "reusable_stages"]


@dataclass(frozen=True)
class Reusable:
    """One finished stage of a run, and the study cache key it fills."""

    stage: str
    key: str
    source: Path
    run: Path
    code_version: str

    def copy_into(self, cache: Path) -> dict[str, object]:
        """Copy the stage into `cache/<key>` (atomically, by rename); return its record."""
        target = cache / self.key
        staging = cache / f".{self.key}.reusing"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(self.source, staging, symlinks=True)
        if target.exists():  # begun by the study and never finished: the run's copy wins
            shutil.rmtree(target)
        staging.rename(target)
        return {
            "stage": self.stage,
            "key": self.key,
            "cell": None,
            "seconds": 0.0,
            "code_version": self.code_version,
            "reused_from": str(self.run),
        }


def reusable_stages(run: Path) -> list[Reusable]:
    """The finished stages of the run at `run`, each with its study key (ValueError when
    `run` is not a `longhorizon run` folder)."""
    recipe_file, log = run / "recipe.yaml", StageLog(run)
    if not recipe_file.is_file() or not log.path.is_file():
        raise ValueError(f"{run}: not a `longhorizon run` folder (no recipe.yaml or stages.json)")
    keys = cell_keys(load_recipe(recipe_file))
    version = str(log.data.get("code_version", "unknown"))
    layout = Layout.under(run)
    stage_dirs = (layout.synth, layout.sft, layout.teachers, layout.distill)
    folders = dict(zip(TRAINING_STAGES, stage_dirs, strict=True))
    found = [
        Reusable(stage, keys.stages[stage], folders[stage], run, version)
        for stage in TRAINING_STAGES
        if log.done(stage) and folders[stage].is_dir()
    ]
    if log.done("eval"):
        for label, key in keys.evals.items():
            folder = layout.eval_dir(label)
            if folder.is_dir():
                found.append(Reusable("eval", key, folder, run, version))
    return found
