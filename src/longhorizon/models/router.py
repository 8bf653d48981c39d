"""Several model servers behind one Backend: least-loaded routing, an episode kept on one server.

A server's prefix cache holds the conversation so far only if every turn of an episode goes to
the same server, so the first request of an episode picks the least-loaded server and pins the
episode there until its scope ends. Load is the number of requests in flight on a server; ties
go to the server with fewer live episodes, then to the one listed first. Requests made outside
an episode scope (scoring, a lone prompt) are routed by load alone and pin nothing.

The episode is named by `episode_scope(key)`, a context variable the harness sets around each
episode, so the router needs no argument threaded through `Agent.act` and `Backend.generate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.core.sampling import SamplingParams
from longhorizon.models.types import Backend, ChatResult, Completion, SequenceScores

__all__ = ["EpisodeScope", "LeastLoadedRouter", "RoutedBackend", "current_episode", "episode_scope"]


@dataclass
class EpisodeScope:
    """One episode's name, and what to undo when it ends (a router's pin)."""

    key: str
    on_close: list[Callable[[], None]] = field(default_factory=list)


_EPISODE: ContextVar[EpisodeScope | None] = ContextVar("longhorizon_episode", default=None)


def current_episode() -> EpisodeScope | None:
    return _EPISODE.get()


@contextmanager
def episode_scope(key: str) -> Iterator[EpisodeScope]:
    """Requests made inside belong to episode `key`; its pins are released on exit."""
    scope = EpisodeScope(key)
    token = _EPISODE.set(scope)
    try:
        yield scope
    finally:
        _EPISODE.reset(token)
        for undo in scope.on_close:
            undo()


class LeastLoadedRouter:
    """The routing decisions alone (no I/O): which server index serves the next request."""

    def __init__(self, n_servers: int) -> None:
        if n_servers < 1:
            raise ValueError("a router needs at least one server")
        self.in_flight = [0] * n_servers
        self.episodes = [0] * n_servers
        self.pins: dict[str, int] = {}

    def acquire(self, key: str | None) -> int:
        """The server for one request of episode `key` (None: no episode); counts it in flight."""
        index = self.pins.get(key) if key is not None else None
        if index is None:
            index = min(
                range(len(self.in_flight)), key=lambda i: (self.in_flight[i], self.episodes[i], i)
            )
            if key is not None:
                self.pins[key] = index
                self.episodes[index] += 1
        self.in_flight[index] += 1
        return index

    def done(self, index: int) -> None:
        """A request on server `index` finished (answered or failed)."""
        if self.in_flight[index] <= 0:
            raise ValueError(f"server {index} has no request in flight")
        self.in_flight[index] -= 1

    def release(self, key: str) -> None:
        """Episode `key` ended: its server no longer counts it; unknown keys are ignored."""
        index = self.pins.pop(key, None)
        if index is not None:
            self.episodes[index] -= 1


class RoutedBackend:
    """A Backend over several backends serving the same model (one per server URL)."""

    name = "routed"

    def __init__(self, backends: Sequence[Backend]) -> None:
        if not backends:
            raise ValueError("RoutedBackend needs at least one backend")
        self.backends = list(backends)
        self.model_id = self.backends[0].model_id
        self.router = LeastLoadedRouter(len(self.backends))
        self.served = [0] * len(self.backends)  # requests answered per server

    @property
    def tokenizer(self):  # type: ignore[no-untyped-def]  # the backends' tokenizer type
        return self.backends[0].tokenizer

    @contextmanager
    def _route(self) -> Iterator[Backend]:
        scope = current_episode()
        key = scope.key if scope is not None else None
        pinned = key is not None and key in self.router.pins
        index = self.router.acquire(key)
        if scope is not None and not pinned:
            scope.on_close.append(partial(self.router.release, scope.key))
        try:
            yield self.backends[index]
            self.served[index] += 1
        finally:
            self.router.done(index)

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> Completion:
        with self._route() as backend:
            return await backend.generate(prompt_ids, params)

    async def generate_batch(
        self, prompts: list[list[int]], params: SamplingParams
    ) -> list[Completion]:
        with self._route() as backend:
            return await backend.generate_batch(prompts, params)

    async def score(
        self, input_ids: list[int], *, positions: list[int] | None = None, top_k: int = 0
    ) -> SequenceScores:
        with self._route() as backend:
            return await backend.score(input_ids, positions=positions, top_k=top_k)

    async def chat(
        self,
        messages: list[Message],
        params: SamplingParams,
        tools: list[ToolSpec] | None = None,
    ) -> ChatResult:
        with self._route() as backend:
            return await backend.chat(messages, params, tools)

    async def aclose(self) -> None:
        for backend in self.backends:
            await backend.aclose()
