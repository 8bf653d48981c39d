"""Who acts in an episode: a model behind any backend, or a scripted program (an expert solver)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from longhorizon.core.messages import Message
from longhorizon.core.sampling import SamplingParams
from longhorizon.models.conversation import TokenConversation
from longhorizon.models.render import ChatRenderer
from longhorizon.models.types import Backend, Completion


class Agent(Protocol):
    """Produces the next completion for a conversation; token ids in, token ids out."""

    name: str
    model_id: str
    renderer: ChatRenderer

    async def act(self, convo: TokenConversation, params: SamplingParams) -> Completion: ...


class BackendAgent:
    """A model behind any backend (hf in-process, or an OpenAI-compatible server)."""

    def __init__(self, backend: Backend, renderer: ChatRenderer | None = None) -> None:
        if renderer is None:
            if backend.tokenizer is None:
                raise ValueError(f"backend {backend.model_id!r} has no tokenizer: pass a renderer")
            renderer = ChatRenderer(backend.tokenizer)
        self.backend = backend
        self.renderer = renderer
        self.name = backend.name
        self.model_id = backend.model_id

    async def act(self, convo: TokenConversation, params: SamplingParams) -> Completion:
        return await self.backend.generate(convo.prompt_ids(), params)


Script = Callable[[list[Message]], str | Awaitable[str]]


class ScriptedAgent:
    """A program that writes the assistant's text; its tokens end with the end-of-turn token.

    Used for expert demonstrations and to drive the loop deterministically in tests.
    """

    name = "scripted"

    def __init__(self, renderer: ChatRenderer, script: Script, model_id: str = "scripted") -> None:
        self.renderer = renderer
        self.script = script
        self.model_id = model_id
        eot = renderer.tokenizer.eos_token_id
        self._eot = [eot] if eot is not None else []

    async def act(self, convo: TokenConversation, params: SamplingParams) -> Completion:
        text = self.script(convo.messages)
        if not isinstance(text, str):
            text = await text
        ids = self.renderer.encode(text)
        finish = "length" if len(ids) >= params.max_tokens else "stop"
        ids = ids[: params.max_tokens] if finish == "length" else ids + self._eot
        return Completion(
            prompt_ids=convo.prompt_ids(),
            completion_ids=ids,
            text=self.renderer.decode(ids),
            finish_reason=finish,
        )
