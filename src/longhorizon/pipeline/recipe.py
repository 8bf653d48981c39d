"""Recipes: the whole Agents-A1 pipeline as one typed, validated configuration.

A recipe names the domains to synthesise (any registered `DomainSpec`, each with its own
level config under `synth.levels`), the student, and per-stage overrides of the stage configs
(SFTConfig, teacher SFT, DistillConfig, evaluation). `stages.plan()` builds every stage's
config without running anything, which is what `longhorizon run --dry-run` prints.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from longhorizon.domains import registry
from longhorizon.evaluation.options import JudgeSettings
from longhorizon.models.tiny import TinyModelConfig
from longhorizon.pipeline.teachers import check_teachers, domain_grpo, teacher_stages
from longhorizon.serving.summariser import SummariserConfig

__all__ = [
    "EvalSpec",
    "LaunchSpec",
    "Recipe",
    "ServingSpec",
    "StudentSpec",
    "SynthSpec",
    "find_recipe",
    "load_recipe",
]


class StudentSpec(BaseModel):
    """A tiny model built from a config, or any model name / checkpoint / hub id."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    tiny: TinyModelConfig | None = None

    def name(self) -> str:
        if self.tiny is not None:
            return self.tiny.slug()
        if self.model is None:
            raise ValueError("student needs `model` or `tiny`")
        return self.model


class SynthSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    domains: dict[str, int] = Field(
        default_factory=lambda: dict.fromkeys(registry.names(), 120),
        description="domain -> accepted tasks wanted (default: every registered domain)",
    )
    levels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="domain -> its level config (synthesis and its held-out split share it)",
    )
    concurrency: int = 8
    solver: str | None = Field(default=None, description="LLM solver; default scripted experts")

    @model_validator(mode="after")
    def _known_domains_and_levels(self) -> SynthSpec:
        unknown = unknown_domains(self.domains)
        if unknown:
            raise ValueError(unknown)
        stray = sorted(set(self.levels) - set(self.domains))
        if stray:
            raise ValueError(f"levels given for domain(s) {stray} not in synth.domains")
        for name in self.domains:
            self.level(name)  # a bad level fails here, at validation
        return self

    def level(self, domain: str) -> BaseModel:
        """The domain's level: its `levels` entry validated by the domain, or its default."""
        return registry.get(domain).parse_level(self.levels.get(domain))


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(default=1, ge=1)
    limit: int | None = Field(default=40, ge=1)
    limits: dict[str, int] = Field(default_factory=dict, description="bench -> its own limit")
    extra_benches: list[str] = Field(default_factory=list, description="e.g. ifeval, molbench")
    max_turns: int | None = None
    max_tokens: int | None = None
    # domain -> turns and tokens per turn on its held-out split, over max_turns and max_tokens
    # (a one-step science task needs fewer turns than MLE; a science derivation or an MLE
    # script more tokens than a search call)
    domain_max_turns: dict[str, PositiveInt] = Field(default_factory=dict)
    domain_max_tokens: dict[str, PositiveInt] = Field(default_factory=dict)
    batch_size: int = 8
    # the LLM judge of answers no verifier checks (hipho's open questions, frontierscience);
    # None: those items are reported unscored
    judge: JudgeSettings | None = None
    # the model visit asks to answer its goal in held-out episodes; None: visit shows the page
    summariser: SummariserConfig | None = None


class ServingSpec(BaseModel):
    """Where teacher scoring runs: in process, or OpenAI-compatible servers (vLLM, SGLang)
    with prompt scoring. Distillation rollouts run on the in-process student snapshot."""

    model_config = ConfigDict(extra="forbid")

    teachers: Literal["hf", "vllm", "sglang"] = "hf"
    teacher_urls: dict[str, str] = Field(default_factory=dict, description="domain -> base URL")


class LaunchSpec(BaseModel):
    """How many processes train: above 1, `longhorizon run` starts SFT, the teachers and OPD
    under torchrun with that many (one node), each rank building the stage from the run's
    resolved recipe (pipeline/launch.py); synthesis, evaluation and the report stay in the
    parent."""

    model_config = ConfigDict(extra="forbid")

    nproc_per_node: PositiveInt = 1


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    out: Path
    seed: int = Field(default=0, ge=0)  # numpy's seeds are unsigned
    student: StudentSpec
    synth: SynthSpec = Field(default_factory=SynthSpec)
    sft: dict[str, Any] = Field(default_factory=dict, description="SFTConfig overrides")
    teachers: dict[str, Any] = Field(
        default_factory=dict,
        description="teacher SFT overrides, plus `stages` (domain -> [sft] or [sft, grpo]), "
        "`grpo` (RLConfig overrides of the GRPO teachers; see pipeline/teachers.py), "
        "`grpo_domains` (one domain's GRPO overrides, merged over `grpo`) and "
        "`generalist: true` (one teacher on every domain, label teacher-generalist, routed to "
        "by every domain in OPD)",
    )
    distill: dict[str, Any] = Field(default_factory=dict, description="DistillConfig overrides")
    eval: EvalSpec = Field(default_factory=EvalSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    launch: LaunchSpec = Field(default_factory=LaunchSpec)
    smoke: bool = Field(
        default=False,
        description="made by `run --smoke` (pipeline/smoke.py): sizes scaled down, token "
        "budgets cut on purpose, so `run` does not warn about them",
    )

    @property
    def domains(self) -> list[str]:
        return sorted(self.synth.domains)

    def benches(self) -> list[str]:
        return [registry.get(d).bench for d in self.domains] + self.eval.extra_benches

    @property
    def generalist_teacher(self) -> bool:
        return bool(self.teachers.get("generalist", False))

    @model_validator(mode="after")
    def _generalist_routing(self) -> Recipe:
        generalist = self.teachers.get("generalist", False)
        if not isinstance(generalist, bool):
            raise ValueError(f"teachers.generalist must be true or false, not {generalist!r}")
        if generalist and self.distill.get("routing", "hard") != "hard":
            raise ValueError(
                "teachers.generalist routes every domain to one teacher: distill.routing "
                "soft would mix that teacher with itself; leave routing hard"
            )
        return self

    @model_validator(mode="after")
    def _teacher_stages(self) -> Recipe:
        """`teachers.stages` and `teachers.grpo` are valid, and GRPO's turn budget fits."""
        check_teachers(self.teachers, self.domains)
        for domain, stages in teacher_stages(self.teachers, self.domains).items():
            if "grpo" in stages:
                turns = (domain_grpo(self.teachers, domain).get("rollout") or {}).get("max_turns")
                spec = registry.get(domain)
                spec.check_turns(self.synth.level(domain), turns, "teachers.grpo.rollout.max_turns")
        return self

    @model_validator(mode="after")
    def _parallel_with_processes(self) -> Recipe:
        """Several processes need every training stage to split its work (ddp or fsdp2)."""
        if self.launch.nproc_per_node == 1:
            return self
        sections = {"sft": self.sft, "teachers": self.teachers, "distill": self.distill}
        for domain, stages in teacher_stages(self.teachers, self.domains).items():
            if "grpo" in stages:
                sections[f"teachers.grpo ({domain})"] = domain_grpo(self.teachers, domain)
        for section, fields in sections.items():
            if fields.get("parallel", "none") == "none":
                raise ValueError(
                    f"launch.nproc_per_node = {self.launch.nproc_per_node} runs training on "
                    f"that many processes, but {section}.parallel is none: set it to ddp or "
                    "fsdp2"
                )
        return self

    @model_validator(mode="after")
    def _budgets_fit_tasks(self) -> Recipe:
        """Every turn budget a stage sets is at least what each domain's tasks need, and the
        per-domain budgets name only this recipe's domains."""
        sections = {"eval": self.eval.model_dump(), "distill.rollout": self.distill.get("rollout")}
        for section, fields in sections.items():
            for name in ("domain_max_turns", "domain_max_tokens"):
                unknown = sorted(set((fields or {}).get(name) or {}) - set(self.domains))
                if unknown:
                    raise ValueError(
                        f"{section}.{name} names {unknown}, not domains of this recipe"
                    )
        for domain in self.domains:
            spec, level = registry.get(domain), self.synth.level(domain)
            for section, fields in sections.items():
                where, turns = domain_budget(fields or {}, domain, "max_turns", section)
                spec.check_turns(level, turns, where)
        return self


def domain_budget(
    fields: dict[str, Any], domain: str, name: str, section: str
) -> tuple[str, int | None]:
    """(the setting's name, its value) of budget `name` for `domain` in a config section:
    `domain_<name>[domain]` where the section sets it, else the shared `<name>`."""
    own = (fields.get(f"domain_{name}") or {}).get(domain)
    if own is not None:
        return f"{section}.domain_{name}.{domain}", own
    return f"{section}.{name}", fields.get(name)


def token_warnings(recipe: Recipe) -> list[str]:
    """Per-turn token budgets (eval, OPD and GRPO rollouts) that cut the turns a domain's
    expert writes, one line each; `run` and `--dry-run` print them. None for a smoke recipe,
    whose budgets are cut on purpose."""
    if recipe.smoke:
        return []
    shared = {"eval": recipe.eval.model_dump(), "distill.rollout": recipe.distill.get("rollout")}
    warnings = []
    for domain in recipe.domains:
        spec, level = registry.get(domain), recipe.synth.level(domain)
        sections = dict(shared)
        if "grpo" in teacher_stages(recipe.teachers, recipe.domains).get(domain, []):
            sections["teachers.grpo.rollout"] = domain_grpo(recipe.teachers, domain).get("rollout")
        for section, fields in sections.items():
            where, tokens = domain_budget(fields or {}, domain, "max_tokens", section)
            warning = spec.token_shortfall(level, tokens, section, where)
            if warning:
                warnings.append(warning)
    return warnings


def unknown_domains(domains: Iterable[str]) -> str | None:
    """The error for domain names nobody registered; None when all are known."""
    unknown = sorted(set(domains) - set(registry.names()))
    if not unknown:
        return None
    return f"unknown domain(s) {unknown}; registered: {registry.names()}"


def load_recipe(path: Path) -> Recipe:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a recipe is a YAML mapping (name, out, student, synth, ...)")
    synth = data.get("synth") or {}
    if not isinstance(synth, dict) or not isinstance(synth.get("domains") or {}, dict):
        raise ValueError(f"{path}: synth is a mapping, and synth.domains one of domain: count")
    unknown = unknown_domains(synth.get("domains") or {})
    if unknown:
        raise ValueError(f"{path}: {unknown}")
    return Recipe.model_validate(data)


def find_recipe(recipe: str, relative_to: Path | None = None) -> Path:
    """A recipe file (as given, or relative to `relative_to`), or a built-in recipe's name
    (tiny, smollm2, agents-a1); ValueError when neither exists."""
    for path in (Path(recipe), *([relative_to / recipe] if relative_to else [])):
        if path.is_file():
            return path
    builtin = resources.files("longhorizon.recipes").joinpath(
        f"{recipe.removesuffix('.yaml')}.yaml"
    )
    if builtin.is_file():
        return Path(str(builtin))
    raise ValueError(f"no recipe file {recipe!r} and no built-in recipe of that name")
