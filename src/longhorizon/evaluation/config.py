"""The typed `longhorizon eval` configuration (frozen once resolved; `--dry-run` prints it).

Every option of the command is a field here; the flags are shorthands for `--set FIELD=VALUE`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from longhorizon.domains import registry
from longhorizon.evaluation.options import EvalOptions, JudgeSettings, RayEpisodes
from longhorizon.serving.summariser import SummariserConfig

__all__ = ["EvalConfig"]


class EvalConfig(BaseModel):
    """One evaluation: a model on benchmarks over seeds, or a responses file scored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bench: tuple[str, ...] = Field(
        min_length=1,
        description="benchmarks: ifeval, ifbench, molbench, molbench-ms-1, hipho, "
        "frontierscience, mle-medals, <domain>-heldout "
        "(a list, or one comma-separated string)",
    )
    out: Path = Field(description="output directory")
    model: str | None = Field(default=None, description="short name, checkpoint dir or hub id")
    responses: Path | None = Field(default=None, description="score this file; run no model")
    inputs: Path | None = Field(default=None, description="benchmark inputs (default: shared)")
    seeds: int = Field(default=1, ge=1, description="seeds 0..N-1: 0 greedy, k>0 sampled")
    backend: Literal["hf", "openai", "vllm"] = "hf"
    base_url: str | None = Field(default=None, description="OpenAI-compatible /v1 URL")
    tokenizer: str | None = Field(default=None, description="tokenizer of a server's model")
    limit: int | None = Field(default=None, ge=1, description="first K items of each bench")
    max_tokens: int | None = Field(default=None, ge=1, description="tokens per response")
    max_turns: int | None = Field(default=None, ge=1, description="held-out: overrides T_max")
    train_tasks: Path | None = Field(default=None, description="held-out: TaskStore to audit")
    batch_size: int = Field(default=8, ge=1, description="hf batch size / requests in flight")
    levels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="held-out: domain -> its level, as synthesis' (a domain not named: default)",
    )
    ray: str | None = Field(
        default=None,
        description="held-out episodes on Ray workers: `local`, `auto` or HOST:PORT (the "
        "single-turn benches still run here)",
    )
    workers: int = Field(default=2, ge=1, description="Ray workers (with ray)")
    judge_base_url: str | None = Field(
        default=None, description="LLM judge: an OpenAI-compatible server (hipho, frontierscience)"
    )
    judge_model: str | None = Field(default=None, description="LLM judge: the served model name")
    judge_max_tokens: int = Field(default=2048, ge=1, description="LLM judge: tokens per reply")
    summariser: str | None = Field(
        default=None, description="held-out: the model visit asks to answer its goal (issue 14)"
    )
    summariser_backend: Literal["hf", "openai", "vllm"] = "hf"
    summariser_base_url: str | None = Field(default=None, description="summariser's /v1 URL")

    @field_validator("bench", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(b.strip() for b in value.split(",") if b.strip())
        return value

    @model_validator(mode="after")
    def _judge_needs_both(self) -> EvalConfig:
        if (self.judge_base_url is None) != (self.judge_model is None):
            raise ValueError("a judge needs both judge_base_url and judge_model")
        return self

    @model_validator(mode="after")
    def _turns_fit_tasks(self) -> EvalConfig:
        """--max-turns is at least what each held-out bench's tasks need at their level."""
        for name in self.bench:
            spec = registry.by_bench(name)
            if spec is not None and name == spec.bench:
                level = spec.parse_level(self.levels.get(spec.name))
                spec.check_turns(level, self.max_turns, "max_turns")
        return self

    def options(self) -> EvalOptions:
        """What the benchmark adapters take."""
        return EvalOptions(
            max_tokens=self.max_tokens,
            batch_size=self.batch_size,
            limit=self.limit,
            train_tasks=self.train_tasks,
            max_turns=self.max_turns,
            levels=self.levels,
            ray=self._ray(),
            judge=self._judge(),
            summariser=self._summariser(),
        )

    def _summariser(self) -> SummariserConfig | None:
        if self.summariser is None:
            return None
        return SummariserConfig(
            model=self.summariser,
            backend=self.summariser_backend,
            base_url=self.summariser_base_url,
        )

    def _judge(self) -> JudgeSettings | None:
        if self.judge_base_url is None or self.judge_model is None:
            return None
        return JudgeSettings(
            base_url=self.judge_base_url, model=self.judge_model, max_tokens=self.judge_max_tokens
        )

    def _ray(self) -> RayEpisodes | None:
        if self.ray is None or self.model is None:
            return None
        return RayEpisodes(
            address=self.ray,
            workers=self.workers,
            model=self.model,
            backend=self.backend,
            base_url=self.base_url,
            tokenizer=self.tokenizer,
        )
