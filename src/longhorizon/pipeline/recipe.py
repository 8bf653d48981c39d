"""Recipes: the whole Agents-A1 pipeline as one typed, validated configuration.

A recipe names the domains to synthesise, the student, and per-stage overrides of the stage
configs (SFTConfig, teacher SFT, DistillConfig, evaluation). `resolve()` builds every stage's
config without running anything, which is what `longhorizon run --dry-run` prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.models.tiny import TinyModelConfig

BENCH_OF_DOMAIN = {"search": "search-heldout", "instruction": "instruction-heldout"}


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

    domains: dict[str, int] = Field(default_factory=lambda: {"search": 120, "instruction": 120})
    entities: int = Field(default=1000, ge=50, description="search: encyclopedia size")
    instruction: InstructionLevel = Field(
        default_factory=InstructionLevel, description="instruction: level of synthesis and eval"
    )
    concurrency: int = 8
    solver: str | None = Field(default=None, description="LLM solver; default scripted experts")


class EvalSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: int = Field(default=1, ge=1)
    limit: int | None = Field(default=40, ge=1)
    limits: dict[str, int] = Field(default_factory=dict, description="bench -> its own limit")
    extra_benches: list[str] = Field(default_factory=list, description="e.g. ifeval, molbench")
    max_turns: int | None = None
    max_tokens: int | None = None
    batch_size: int = 8


class ServingSpec(BaseModel):
    """Where teacher scoring runs: in process, or OpenAI-compatible servers (vLLM, SGLang)
    with prompt scoring. Distillation rollouts run on the in-process student snapshot."""

    model_config = ConfigDict(extra="forbid")

    teachers: Literal["hf", "vllm", "sglang"] = "hf"
    teacher_urls: dict[str, str] = Field(default_factory=dict, description="domain -> base URL")


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    out: Path
    seed: int = 0
    student: StudentSpec
    synth: SynthSpec = Field(default_factory=SynthSpec)
    sft: dict[str, Any] = Field(default_factory=dict, description="SFTConfig overrides")
    teachers: dict[str, Any] = Field(default_factory=dict, description="teacher SFT overrides")
    distill: dict[str, Any] = Field(default_factory=dict, description="DistillConfig overrides")
    eval: EvalSpec = Field(default_factory=EvalSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)

    @property
    def domains(self) -> list[str]:
        return sorted(self.synth.domains)

    def benches(self) -> list[str]:
        return [BENCH_OF_DOMAIN[d] for d in self.domains] + self.eval.extra_benches


def load_recipe(path: Path) -> Recipe:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    unknown = sorted(set(data.get("synth", {}).get("domains", {})) - set(BENCH_OF_DOMAIN))
    if unknown:
        raise ValueError(
            f"{path}: unknown domain(s) {unknown}; built in: {sorted(BENCH_OF_DOMAIN)}"
        )
    return Recipe.model_validate(data)
