"""The visit summariser: the model that `visit` asks to answer its goal over a page.

A `SummariserConfig` names the model and its backend; `summariser_resources` opens it for one
run and yields the tool resources `tools/knowledge.visit` reads (`summariser`,
`summariser_params`). Synthesis, `rollout`, evaluation, OPD and GRPO each take one, so a
model solver's `visit(id, goal=...)` reads the same kind of page view in every stage. Opened
inside a block that already holds an equal config open, it shares that one; inside a
`shared_summariser` block, the first opening opens it for the rest of the block. Evaluation
opens it once per model, not once per bench and seed (a vllm summariser is a server start),
and not at all when no bench asks for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from longhorizon.core.sampling import SamplingParams
from longhorizon.serving.backends import BackendKind, open_backend
from longhorizon.tools.knowledge import SUMMARY_MAX_TOKENS

__all__ = ["SummariserConfig", "shared_summariser", "summariser_resources"]


class SummariserConfig(BaseModel):
    """Which model writes visit's goal summaries, greedy and at most `max_tokens` long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(description="short name, checkpoint dir, or the served model name")
    backend: BackendKind = Field(
        default="hf", description="hf (in process), openai (base_url's server) or vllm (started)"
    )
    base_url: str | None = Field(
        default=None, description="openai: any OpenAI-compatible chat server's /v1 URL"
    )
    max_tokens: int = Field(default=SUMMARY_MAX_TOKENS, ge=1, description="tokens a summary")

    @model_validator(mode="after")
    def _served(self) -> SummariserConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("summariser.backend openai needs summariser.base_url")
        return self


class _Held:
    """A summariser a block holds for nested openings: open now, or on the first one."""

    def __init__(self, config: SummariserConfig, resources: dict[str, Any] | None) -> None:
        self.config = config
        self.resources = resources
        self.stack = AsyncExitStack()  # what a lazily opened one closes with the block
        self.lock = asyncio.Lock()  # concurrent first openings open it once

    async def open(self) -> dict[str, Any]:
        async with self.lock:
            if self.resources is None:
                self.resources = await self.stack.enter_async_context(_opened(self.config))
        return self.resources


# The summariser the enclosing block holds, shared with nested openings of an equal config.
_OPEN: ContextVar[_Held | None] = ContextVar("open_summariser", default=None)


@asynccontextmanager
async def summariser_resources(config: SummariserConfig | None) -> AsyncIterator[dict[str, Any]]:
    """The tool resources of `config`'s summariser, open for the block (None: `{}`, and
    visit returns the whole page whatever the goal); an enclosing block's equal one is shared."""
    if config is None:
        yield {}
        return
    held = _OPEN.get()
    if held is not None and held.config == config:
        yield await held.open()
        return
    async with _opened(config) as resources:
        token = _OPEN.set(_Held(config, resources))
        try:
            yield resources
        finally:
            _OPEN.reset(token)


@asynccontextmanager
async def shared_summariser(config: SummariserConfig | None) -> AsyncIterator[None]:
    """A block in which `config`'s summariser opens at the first `summariser_resources` of an
    equal config and stays open, shared, until the block ends; never, if nothing asks."""
    if config is None:
        yield
        return
    held = _Held(config, None)
    token = _OPEN.set(held)
    try:
        async with held.stack:
            yield
    finally:
        _OPEN.reset(token)


@asynccontextmanager
async def _opened(config: SummariserConfig) -> AsyncIterator[dict[str, Any]]:
    params = SamplingParams(temperature=0.0, max_tokens=config.max_tokens)
    if config.backend == "openai":  # any chat server: plain text, none of vLLM's token fields
        from longhorizon.models.openai_backend import OpenAIBackend  # on use: the CLI imports us

        assert config.base_url is not None
        async with OpenAIBackend(config.base_url, model=config.model, token_ids=False) as server:
            yield {"summariser": server, "summariser_params": params}
        return
    async with open_backend(config.model, config.backend) as backend:
        yield {"summariser": backend, "summariser_params": params}
