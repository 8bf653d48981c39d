"""The one async interface every model backend implements, and the values it returns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.core.sampling import SamplingParams
from longhorizon.core.tokens import FinishReason, TokenLogprob

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class Completion(BaseModel):
    """Token-in-token-out result of one generation.

    `logprobs` are of the model's raw distribution (before temperature / top-k / top-p), one
    per completion token; `top_logprobs` holds the k most likely tokens at each step.
    `completion_ids` include a generated end-of-turn token when the model emitted one.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    text: str
    logprobs: list[float] | None = None
    top_logprobs: list[list[TokenLogprob]] | None = None
    finish_reason: FinishReason = "stop"
    latency_s: float = 0.0


class SequenceScores(BaseModel):
    """Teacher scoring of given token ids: for each position t, log p(. | ids[:t]).

    `target_logprobs[i]` is the logprob of ids[positions[i]]; `top_ids[i]` / `top_logprobs[i]`
    are the k most likely tokens at that position, most likely first.
    """

    positions: list[int]
    target_logprobs: list[float]
    top_ids: list[list[int]] = Field(default_factory=list)
    top_logprobs: list[list[float]] = Field(default_factory=list)


class ToolCallError(BaseModel):
    """A tool call that could not be parsed: a value the episode carries, not an exception."""

    message: str
    raw: str


class ChatResult(BaseModel):
    """An assistant message with parsed tool calls; `completion` is set when token ids are known."""

    message: Message
    parse_errors: list[ToolCallError] = Field(default_factory=list)
    completion: Completion | None = None


class BackendError(RuntimeError):
    """A backend failed in a way the caller may retry (server down, timeout) or must report."""


class UnsupportedError(BackendError):
    """The backend or its server cannot do what was asked (e.g. prompt scoring)."""


@runtime_checkable
class Backend(Protocol):
    """What the harness, synthesis, training and evaluation need from a model."""

    name: str
    model_id: str

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None: ...

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> Completion: ...

    async def generate_batch(
        self, prompts: list[list[int]], params: SamplingParams
    ) -> list[Completion]: ...

    async def score(
        self, input_ids: list[int], *, positions: list[int] | None = None, top_k: int = 0
    ) -> SequenceScores: ...

    async def chat(
        self,
        messages: list[Message],
        params: SamplingParams,
        tools: list[ToolSpec] | None = None,
    ) -> ChatResult: ...

    async def aclose(self) -> None: ...
