"""Stage 2 in the pipeline: each domain's teacher is a list of stages.

A teacher is one of
    [sft]                               SFT on the domain's trajectories
    [sft, grpo]                         then GRPO from that model
    [sft-reasoning, sft-tools]          two SFT stages: trajectories without a tool call, then
                                        those with one (the report's science teacher)
    [sft-reasoning, sft-tools, grpo]    the two SFT stages, then GRPO

Recipe fields (inside `teachers:`, beside the teacher-SFT overrides):

    stages: {instruction: [sft, grpo]}   # default: every domain [sft]
    grpo: {steps: 8, lr: 1e-4, ...}      # RLConfig overrides for every GRPO teacher
    grpo_domains: {tool: {objective: {advantage: papo}}}   # one domain's, merged over grpo

A `[sft]` teacher is today's: `teachers/<domain>/stage-1-<domain>/` writes `teacher/` (its
folder name and its content key are unchanged, so existing caches stay valid). A
`[sft, grpo]` teacher trains its SFT stage into `stage-1-sft/final/`, then GRPO from that model
on the domain's training tasks with the domain's verifier reward into `stage-2-grpo/`, whose
final model is `teacher/` (what OPD and evaluation use). The two SFT stages of a two-stage
teacher are `stage-1-reasoning/` and `stage-2-tools/`; with GRPO after them, GRPO starts from
`stage-2-tools/final/`. Every step resumes: a finished stage is skipped (its final model
exists), an interrupted one continues from its latest checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, model_validator
from rich.console import Console

from longhorizon.domains import registry, verify
from longhorizon.rl import RLConfig, VerdictKinds, run_rl
from longhorizon.training.data import ToolUseFilter
from longhorizon.training.teach import (
    TEACHER_METADATA,
    TeachConfig,
    run_teach,
    stage_configs,
    teacher_info,
)

__all__ = [
    "GRPO_DIR",
    "PIPELINE_FIELDS",
    "SFT_DIR",
    "STAGE_NAMES",
    "TEACHER_SHAPES",
    "TeachRun",
    "check_teachers",
    "domain_grpo",
    "grpo_config",
    "sft_final",
    "sft_stages",
    "teacher_stages",
    "train_teacher",
    "verdict_kinds",
]

STAGE_NAMES = ("sft", "sft-reasoning", "sft-tools", "grpo")
TEACHER_SHAPES = (
    ["sft"],
    ["sft", "grpo"],
    ["sft-reasoning", "sft-tools"],
    ["sft-reasoning", "sft-tools", "grpo"],
)
SFT_DIR, GRPO_DIR = "stage-1-sft", "stage-2-grpo"
# An SFT stage of a teacher's list -> (its folder's name, its data's tool-use filter).
SFT_STAGES: dict[str, tuple[str, ToolUseFilter]] = {
    "sft": ("sft", "any"),
    "sft-reasoning": ("reasoning", "without"),
    "sft-tools": ("tools", "with"),
}
# RLConfig fields the pipeline sets for a GRPO teacher (a recipe may not override them).
PIPELINE_FIELDS = frozenset({"model", "tasks", "corpus", "output_dir", "final_dir"})


def teacher_stages(teachers: Mapping[str, Any], domains: list[str]) -> dict[str, list[str]]:
    """domain -> its stages (`teachers.stages`, default `[sft]`); ValueError naming the problem."""
    given = teachers.get("stages") or {}
    if not isinstance(given, Mapping):
        raise ValueError(f"teachers.stages must map a domain to its stages, got {given!r}")
    stray = sorted(set(given) - set(domains))
    if stray:
        raise ValueError(f"teachers.stages names domain(s) {stray} not in synth.domains {domains}")
    out = {}
    for domain in domains:
        stages = given.get(domain, ["sft"])
        where = f"teachers.stages.{domain}"
        if not isinstance(stages, list) or not stages:
            raise ValueError(f"{where} must be a list of stages, e.g. [sft, grpo]; got {stages!r}")
        unknown = [s for s in stages if s not in STAGE_NAMES]
        if unknown:
            raise ValueError(
                f"{where}: unknown stage(s) {unknown}; stages are {', '.join(STAGE_NAMES)}"
            )
        if stages not in TEACHER_SHAPES:
            shapes = ", ".join("[" + ", ".join(t) + "]" for t in TEACHER_SHAPES)
            raise ValueError(
                f"{where} = {stages}: a teacher is one of {shapes} (grpo trains from the "
                "SFT teacher, so it comes after the SFT stages, once)"
            )
        out[domain] = list(stages)
    return out


def check_teachers(teachers: Mapping[str, Any], domains: list[str]) -> None:
    """Validate `teachers.stages` and `teachers.grpo` (the overrides, and PAPO's rubrics)."""
    stages = teacher_stages(teachers, domains)
    per_domain = teachers.get("grpo_domains") or {}
    if not isinstance(per_domain, Mapping):
        raise ValueError(
            f"teachers.grpo_domains must map a domain to overrides, got {per_domain!r}"
        )
    grpo = [d for d, s in stages.items() if "grpo" in s]
    idle = sorted(set(per_domain) - set(grpo))
    if idle:
        raise ValueError(
            f"teachers.grpo_domains names {idle}, which have no grpo stage (teachers.stages "
            f"gives grpo to {grpo})"
        )
    if grpo and teachers.get("generalist"):
        raise ValueError(
            f"teachers.stages gives {grpo} a grpo stage, but teachers.generalist trains one "
            "SFT teacher for every domain: GRPO teachers are per domain, so use one or the other"
        )
    two = [d for d, s in stages.items() if "sft-reasoning" in s]
    if two and teachers.get("generalist"):
        raise ValueError(
            f"teachers.stages gives {two} two SFT stages, but teachers.generalist trains one "
            "SFT teacher for every domain in one stage: use one or the other"
        )
    checked: list[str | None] = list(grpo) or [None]  # no grpo stage: check the overrides alone
    for domain in checked:
        where = f"teachers.grpo_domains.{domain} over teachers.grpo"
        _check_grpo(domain_grpo(teachers, domain), domain, where if domain in per_domain else None)


def domain_grpo(teachers: Mapping[str, Any], domain: str | None) -> dict[str, Any]:
    """`teachers.grpo`, with `teachers.grpo_domains[domain]` merged over it key by key."""
    base = teachers.get("grpo") or {}
    if not isinstance(base, Mapping):
        raise ValueError(f"teachers.grpo must be a mapping of RLConfig overrides, got {base!r}")
    return _merge(dict(base), (teachers.get("grpo_domains") or {}).get(domain) or {})


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping):
            base[key] = _merge(dict(base[key]), value)
        else:
            base[key] = value
    return base


def _check_grpo(overrides: dict[str, Any], domain: str | None, where: str | None) -> None:
    where = where or "teachers.grpo"
    fixed = sorted(PIPELINE_FIELDS & set(overrides))
    if fixed:
        raise ValueError(
            f"{where} sets {fixed}: the pipeline sets these (the SFT teacher, the "
            "domain's training tasks and corpus, the teacher's folders)"
        )
    try:
        cfg = RLConfig.model_validate({"model": "@sft-teacher", "tasks": [], **overrides})
    except ValidationError as exc:
        raise ValueError(f"{where}: {exc}") from None
    _check_papo(cfg, domain, where)


def _check_papo(cfg: RLConfig, domain: str | None, where: str) -> None:
    papo = domain is not None and cfg.objective.advantage == "papo"
    if papo and not registry.get(str(domain)).rubric_verifiers:
        raise ValueError(
            f"{where}: objective.advantage = papo needs rubric checks (the process "
            f"reward); the verifier of {[domain]} has none: use advantage grpo"
        )


def sft_stages(stages: list[str]) -> list[tuple[str, ToolUseFilter]]:
    """The SFT stages of a teacher's list: (folder name, tool-use filter) each, in order."""
    return [SFT_STAGES[s] for s in stages if s in SFT_STAGES]


def sft_final(root: Path, stages: list[str]) -> Path:
    """Where the last SFT stage of a teacher with a GRPO stage writes its model."""
    sft = sft_stages(stages)
    return root / f"stage-{len(sft)}-{sft[-1][0]}" / "final"


def grpo_config(
    recipe_teachers: Mapping[str, Any],
    domain: str,
    root: Path,
    tasks: Path,
    corpus: list[Path],
    seed: int,
    stages: list[str] | None = None,
) -> RLConfig:
    """The GRPO stage of `domain`'s teacher under `root` (= teachers/<domain>), after the SFT
    stages of `stages` (default [sft, grpo])."""
    return RLConfig.model_validate(
        {
            "seed": seed,
            **domain_grpo(recipe_teachers, domain),
            "model": str(sft_final(root, stages or ["sft", "grpo"])),
            "tasks": [tasks],
            "corpus": {domain: corpus} if corpus else {},
            "output_dir": root / GRPO_DIR,
            "final_dir": root / "teacher",
        }
    )


# RLConfig fields `longhorizon teach` sets for its GRPO stage (the user gives the rest).
TEACH_FIELDS = frozenset({"model", "output_dir", "final_dir"})


class TeachRun(TeachConfig):
    """`longhorizon teach`'s config: the SFT stages, then, with `grpo`, a GRPO stage that
    starts from the last SFT stage's model and whose final model is the teacher."""

    grpo: dict[str, Any] | None = None  # RLConfig fields but model, output_dir and final_dir

    @model_validator(mode="after")
    def _grpo_resolves(self) -> TeachRun:
        if self.grpo is not None and self.domain:
            self.rl_config()  # a bad field fails when the config is read, before any training
        return self

    def rl_config(self) -> RLConfig | None:
        if self.grpo is None:
            return None
        fixed = sorted(TEACH_FIELDS & set(self.grpo))
        if fixed:
            raise ValueError(f"grpo sets {fixed}: teach sets these (the stages' folders)")
        last = stage_configs(self)[-1].output_dir  # the folders are stage_configs' to name
        try:
            cfg = RLConfig.model_validate(
                {
                    "seed": self.sft.seed,  # the teacher's seed, unless grpo sets its own
                    **self.grpo,
                    "model": str(last / "final"),
                    "output_dir": self.root() / f"stage-{len(self.stages) + 1}-grpo",
                    "final_dir": self.teacher_dir(),
                }
            )
        except ValidationError as exc:
            raise ValueError(f"grpo: {exc}") from None
        _check_papo(cfg, self.domain, "grpo")
        return cfg


def verdict_kinds() -> dict[str, VerdictKinds]:
    """Each registered domain's summary and rubric verdict names (the RL trainer's `kinds`)."""
    return {s.name: VerdictKinds(s.summary_verifiers, s.rubric_verifiers) for s in registry.specs()}


def train_teacher(teach: TeachConfig, grpo: RLConfig | None, console: Console) -> Path:
    """Train (or resume) one domain's teacher; returns its checkpoint directory."""
    if grpo is None:
        return run_teach(teach, console)
    sft_final = Path(grpo.model)
    run_teach(teach, console, final_dir=sft_final)
    info = teacher_info(teach, stage_configs(teach, sft_final))
    stage = {
        "name": "grpo",
        "run_dir": str(grpo.output_dir),
        "tasks": [str(p) for p in grpo.tasks],
        "config_fingerprint": grpo.fingerprint(),
    }
    info = info.model_copy(update={"stages": [*info.stages, stage]})
    n = len(teach.stages) + 1
    console.rule(f"teacher {teach.domain}: stage {n}/{n} grpo")
    meta = {TEACHER_METADATA: info.model_dump(mode="json")}
    return Path(run_rl(grpo, verify, console, verdict_kinds(), meta))
