"""Harness settings that are not part of a task's protocol."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.sampling import SamplingParams


class HarnessConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0))
    reserve_tokens: int = Field(
        default=128, ge=1, description="room kept for a response and a forced-answer prompt"
    )
    workdir: Path = Path("runs/workdirs")
    model_concurrency: int = Field(default=8, ge=1, description="model calls in flight")
    tool_concurrency: int = Field(default=8, ge=1, description="tool executions in flight")
    abort_retries: int = Field(default=2, ge=0, description="reruns of an ABORTED episode")
    samples_per_task: int = Field(default=1, ge=1)
