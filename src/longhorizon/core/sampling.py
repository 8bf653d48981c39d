"""Sampling parameters shared by every backend and recorded in every trajectory's provenance."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SamplingParams(BaseModel):
    """Decoding controls: top_k=0 and top_p=1.0 turn those filters off; temperature 0 is greedy."""

    model_config = ConfigDict(frozen=True)

    temperature: float = Field(default=1.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=0, ge=0)
    max_tokens: int = Field(default=256, ge=1)
    stop: tuple[str, ...] = ()
    seed: int | None = None
    top_logprobs: int = Field(default=0, ge=0, description="top-k logprobs per generated token")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
