"""The stage configs of a recipe, built without running anything (what --dry-run shows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel

from longhorizon.distill.config import DistillConfig, TeacherSpec
from longhorizon.domains import registry
from longhorizon.pipeline.recipe import Recipe
from longhorizon.pipeline.teachers import grpo_config, sft_stages, teacher_stages
from longhorizon.rl import RLConfig
from longhorizon.synthesis.selfplay import SynthConfig
from longhorizon.training.config import SFTConfig
from longhorizon.training.data import DataConfig
from longhorizon.training.teach import GENERALIST, TeachConfig, TeachStage


@dataclass(frozen=True)
class Layout:
    """Where each stage writes. `longhorizon run` puts every stage under the run directory;
    a study (`longhorizon ablate`) gives each stage its own content-addressed folder, so every
    cell that resolves to the same stage config finds the same paths (and resumes the same
    checkpoints: SFT and OPD refuse a checkpoint whose config differs, paths included)."""

    synth: Path  # synth/<domain>/
    sft: Path
    teachers: Path  # teachers/<domain>/teacher (teachers/generalist/teacher)
    distill: Path
    eval: Path  # eval/<label>/ unless `eval_dirs` names the label's own folder
    eval_dirs: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def under(cls, out: Path) -> Layout:
        return cls(out / "synth", out / "sft", out / "teachers", out / "distill", out / "eval")

    def eval_dir(self, label: str) -> Path:
        return self.eval_dirs.get(label, self.eval / label)


@dataclass(frozen=True)
class Plan:
    """Every stage's resolved configuration and the run layout."""

    recipe: Recipe
    student: str
    synth: dict[str, SynthConfig]
    levels: dict[str, BaseModel]  # domain -> its level (synthesis and held-out eval)
    sft: SFTConfig
    teachers: dict[str, TeachConfig]
    distill: DistillConfig
    layout: Layout
    teacher_grpo: dict[str, RLConfig] = field(default_factory=dict)  # domain -> its GRPO stage

    @property
    def out(self) -> Path:
        return self.recipe.out

    def eval_dir(self, label: str) -> Path:
        return self.layout.eval_dir(label)

    def models(self) -> dict[str, str]:
        """Evaluation labels -> checkpoints (a teacher is evaluated on the domains it learnt:
        its own, or every domain for the generalist)."""
        models = {"base": self.student, "sft": str(self.sft.final_path)}
        for domain, cfg in self.teachers.items():
            models[f"teacher-{domain}"] = str(cfg.teacher_dir())
        models["distilled"] = str(self.distill.final_path)
        return models


def plan(recipe: Recipe, student: str, layout: Layout | None = None) -> Plan:
    """Resolve a recipe into stage configs; `student` is the base checkpoint (or its name).

    Stages write under `layout` (default: all under `recipe.out`)."""
    lay = layout or Layout.under(recipe.out)
    synth = {
        d: SynthConfig(
            n=n, out=lay.synth / d, seed=recipe.seed, concurrency=recipe.synth.concurrency
        )
        for d, n in recipe.synth.domains.items()
    }
    levels = {d: recipe.synth.level(d) for d in recipe.domains}
    trajectories = tuple(lay.synth / d / "trajectories" for d in recipe.domains)
    sft_fields = {"model": student, "output_dir": lay.sft, "seed": recipe.seed, **recipe.sft}
    sft_fields["data"] = DataConfig(paths=trajectories, **recipe.sft.get("data", {}))
    sft = SFTConfig.model_validate(sft_fields)
    teacher_sft = sft.model_copy(update=_teacher_fields(recipe))
    stages = teacher_stages(recipe.teachers, recipe.domains)
    teachers = {
        name: TeachConfig(
            domain=name,
            domains=None if domains == (name,) else domains,
            init=str(sft.final_path),
            output_dir=lay.teachers,
            sft=teacher_sft,
            stages=_teach_stages(name, domains, stages.get(name, ["sft"]), lay),
        )
        for name, domains in _teacher_domains(recipe).items()
    }
    routed = {d: teachers[GENERALIST if recipe.generalist_teacher else d] for d in recipe.domains}
    files = _corpus(recipe, lay.synth)
    teacher_grpo = {
        d: grpo_config(
            recipe.teachers,
            d,
            lay.teachers / d,
            lay.synth / d / "tasks",
            files.get(d, []),
            recipe.seed,
            stages[d],
        )
        for d in recipe.domains
        if "grpo" in stages[d]
    }
    distill = DistillConfig.model_validate(
        {
            "model": str(sft.final_path),
            "teachers": [_teacher_spec(recipe, d, routed[d]) for d in recipe.domains],
            "tasks": [lay.synth / d / "tasks" for d in recipe.domains],
            "corpus": files,
            "output_dir": lay.distill,
            "seed": recipe.seed,
            **recipe.distill,
        }
    )
    return Plan(recipe, student, synth, levels, sft, teachers, distill, lay, teacher_grpo)


def _teach_stages(
    name: str, domains: tuple[str, ...], stages: list[str], lay: Layout
) -> list[TeachStage]:
    """The SFT stages of teacher `name`: its domains' trajectories, filtered by tool use."""
    paths = tuple(lay.synth / d / "trajectories" for d in domains)
    if stages == ["sft"]:  # keeps its folder (and content key): stage-1-<name>
        return [TeachStage(name=name, data=DataConfig(paths=paths, domains=domains))]
    return [
        TeachStage(name=folder, data=DataConfig(paths=paths, domains=domains, tool_use=tools))
        for folder, tools in sft_stages(stages)
    ]


def _teacher_domains(recipe: Recipe) -> dict[str, tuple[str, ...]]:
    """Teacher label -> the domains it learns from: one per domain, or the generalist."""
    if recipe.generalist_teacher:
        return {GENERALIST: tuple(recipe.domains)}
    return {d: (d,) for d in recipe.domains}


def _teacher_fields(recipe: Recipe) -> dict[str, object]:
    fields = dict(recipe.teachers)
    # the stages' data, the stage lists, GRPO's config, the generalist switch
    for key in ("data", "stages", "grpo", "grpo_domains", "generalist"):
        fields.pop(key, None)
    return SFTConfig.model_validate({**SFTConfig().model_dump(), **fields}).model_dump(
        include=set(fields)
    )


def _teacher_spec(recipe: Recipe, domain: str, teach: TeachConfig) -> TeacherSpec:
    """Samples of `domain` go to teacher `teach` (its own, or the generalist)."""
    url = recipe.serving.teacher_urls.get(str(teach.domain))
    if recipe.serving.teachers == "hf" or url is None:
        return TeacherSpec(domain=domain, model=str(teach.teacher_dir()))
    return TeacherSpec(
        domain=domain,
        model=f"teacher-{teach.domain}",
        backend="openai",
        base_url=url,
        tokenizer=str(teach.teacher_dir()),
    )


def _corpus(recipe: Recipe, synth_root: Path) -> dict[str, list[Path]]:
    """Each domain's corpus files, where its spec says synthesis wrote them."""
    files = {d: registry.get(d).corpus(synth_root / d) for d in recipe.domains}
    return {d: paths for d, paths in files.items() if paths}
