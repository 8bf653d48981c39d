"""Content keys of a cell's stages: what lets cells share synthesis, SFT and teachers.

A stage's key is a hash of exactly the resolved config the pipeline would run it with, in
which every path to an earlier stage's output is replaced by that stage's key. The config is
resolved once with symbolic folders (`@synth`, `@sft`, ...) to find the keys, then again with
each stage in `cache/<stage>-<key>/`: two cells whose synthesis configs agree get the same
folder (and the same paths inside every later config), so SFT and OPD, which refuse a
checkpoint whose config differs, resume each other's runs. Any field a stage config gains
later enters its key without a change here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.pipeline.recipe import Recipe
from longhorizon.pipeline.run import benches_for, eval_options, train_tasks
from longhorizon.pipeline.stages import Layout, Plan, plan

__all__ = ["TRAINING_STAGES", "CellKeys", "cell_keys", "cell_plan", "stages_needed"]

TRAINING_STAGES = ("synth", "sft", "teachers", "distill")
_SYMBOLIC = Layout(Path("@synth"), Path("@sft"), Path("@teachers"), Path("@distill"), Path("@eval"))
_STUDENT = "@student"


@dataclass(frozen=True)
class CellKeys:
    """Stage -> key (`synth-1a2b...`) for the training stages, label -> key for evaluations."""

    stages: dict[str, str]
    evals: dict[str, str]

    def layout(self, cache: Path, cell_dir: Path) -> Layout:
        synth, sft, teachers, distill = (cache / self.stages[s] for s in TRAINING_STAGES)
        evals = {label: cache / key for label, key in self.evals.items()}
        return Layout(synth, sft, teachers, distill, cell_dir / "eval", evals)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _substitute(value: Any, keys: dict[str, str]) -> Any:
    """Every string naming a symbolic folder (or a path under it) with the folder's key."""
    if isinstance(value, dict):
        return {k: _substitute(v, keys) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, keys) for v in value]
    if isinstance(value, str):
        for symbol, key in keys.items():
            if value == symbol or value.startswith(symbol + "/"):
                return key + value[len(symbol) :]
    return value


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json")


def stage_payloads(p: Plan) -> dict[str, Any]:
    """What each training stage depends on, as resolved by the pipeline (symbolic paths)."""
    recipe = p.recipe
    return {
        "synth": {
            "configs": {d: _dump(c) for d, c in p.synth.items()},
            "levels": {d: _dump(level) for d, level in p.levels.items()},
            "solver": recipe.synth.solver,
            "tokenizer": _STUDENT,
        },
        "sft": _dump(p.sft),
        "teachers": {d: _teacher_payload(p, d) for d in p.teachers},
        "distill": _dump(p.distill),
    }


def _teacher_payload(p: Plan, domain: str) -> Any:
    """An [sft] teacher's payload is its TeachConfig alone, as before GRPO teachers existed
    (so their keys, and the caches under them, stay valid); [sft, grpo] adds the GRPO stage."""
    teach = _dump(p.teachers[domain])
    grpo = p.teacher_grpo.get(domain)
    return teach if grpo is None else {"sft": teach, "grpo": _dump(grpo)}


def eval_payload(p: Plan, label: str) -> dict[str, Any]:
    benches = benches_for(p, label)
    options = {b: _dump(eval_options(p, b, train_tasks(p, b))) for b in benches}
    # where episodes run (in process or on Ray) and progress bars do not change the scores
    where = {"show_progress", "ray"}
    options = {b: {k: v for k, v in o.items() if k not in where} for b, o in options.items()}
    for o in options.values():  # added after runs were cached: unset, keys stay unchanged
        for late in ("judge", "summariser"):
            if o.get(late) is None:
                o.pop(late, None)
    return {
        "model": p.models()[label],
        "seeds": p.recipe.eval.seeds,
        "options": options,
    }


def cell_keys(recipe: Recipe) -> CellKeys:
    """The keys of every stage and evaluation of a recipe; resolving validates every stage
    config (a bad override raises here, naming the field)."""
    p = plan(recipe, _STUDENT, _SYMBOLIC)
    keys = {_STUDENT: f"student-{_digest(_dump(recipe.student))}"}
    stages: dict[str, str] = {}
    for stage, payload in stage_payloads(p).items():
        stages[stage] = f"{stage}-{_digest(_substitute(payload, keys))}"
        keys[f"@{stage}"] = stages[stage]
    evals = {
        label: f"eval-{_digest(_substitute(eval_payload(p, label), keys))}" for label in p.models()
    }
    return CellKeys(stages, evals)


def cell_plan(recipe: Recipe, student: str, keys: CellKeys, cache: Path) -> Plan:
    """The pipeline's plan for a cell, every stage in its content-addressed folder."""
    return plan(recipe, student, keys.layout(cache, recipe.out))


def stages_needed(label: str) -> tuple[str, ...]:
    """The training stages an evaluated model needs (base needs synthesis: its held-out
    split is audited against the training tasks)."""
    if label == "base":
        return TRAINING_STAGES[:1]
    if label == "sft":
        return TRAINING_STAGES[:2]
    if label.startswith("teacher-"):
        return TRAINING_STAGES[:3]
    return TRAINING_STAGES
