"""Context strategies: what to do when the conversation outgrows its budget (L_ctx).

Each strategy gets the episode before every model call. `threshold` says when to act;
`make_room` changes the context (restart, mask, compact) and returns False when it cannot,
after which the harness rolls back the last turn and forces a final answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from longhorizon.core.messages import Message
from longhorizon.core.task import ContextStrategy, Protocol
from longhorizon.models.conversation import TokenConversation

OBSERVATION_REMOVED = "[earlier observation removed to save context]"
COMPACT_PROMPT = (
    "Your context is nearly full. Summarise your progress so far for yourself: what the task "
    "is, what you found (with ids and exact values), what is still open, and your plan. "
    "Do not call tools. This digest will replace the earlier conversation."
)
DIGEST_HEADER = "Digest of your earlier work on this task (the earlier conversation was removed):"

Summarise = Callable[[TokenConversation], Awaitable[str]]


@dataclass
class ContextState:
    """What a strategy may use: the conversation, the initial messages, counters, notes."""

    convo: TokenConversation
    initial: list[Message]
    notes: list[str]
    summarise: Summarise
    restarts: int = 0
    compactions: int = 0


class Strategy:
    def __init__(self, config: ContextStrategy, max_context: int, reserve: int) -> None:
        self.config = config
        self.max_context = max_context
        self.reserve = reserve  # tokens kept free for the next response

    @property
    def limit(self) -> int:
        return self.max_context - self.reserve

    def threshold(self) -> int:
        return self.limit

    def fits(self, state: ContextState) -> bool:
        return len(state.convo.prompt_ids()) <= self.limit

    async def make_room(self, state: ContextState) -> bool:
        return False


class HardCap(Strategy):
    """At the cap: no change, the harness forces a final answer."""


class KeepLastK(Strategy):
    """Past the threshold, observations older than the last K are replaced by a marker."""

    def threshold(self) -> int:
        return min(self.limit, int(self.config.compact_at * self.max_context))

    async def make_room(self, state: ContextState) -> bool:
        tool_indices = [i for i, m in enumerate(state.convo.messages) if m.role == "tool"]
        older = [
            i
            for i in tool_indices[: -self.config.keep_last]
            if state.convo.messages[i].content != OBSERVATION_REMOVED
        ]
        if not older:
            return False
        masked = [
            m.model_copy(update={"content": OBSERVATION_REMOVED}) if i in older else m
            for i, m in enumerate(state.convo.messages)
        ]
        state.convo.restart(masked)
        return self.fits(state)


class Compaction(Strategy):
    """Past the threshold, the model writes a digest that replaces the conversation.

    Guard against loops: at most `max_restarts` compactions per episode, and a compaction that
    does not bring the context back under the threshold ends in a forced answer.
    """

    def threshold(self) -> int:
        return min(self.limit, int(self.config.compact_at * self.max_context))

    async def make_room(self, state: ContextState) -> bool:
        if state.compactions >= self.config.max_restarts:
            return False
        state.compactions += 1
        digest = await state.summarise(state.convo)
        notes = "\n".join(f"- {n}" for n in state.notes)
        body = f"{DIGEST_HEADER}\n{digest}" + (f"\n\nYour notes:\n{notes}" if notes else "")
        state.convo.restart([*state.initial, Message(role="user", content=body)])
        return len(state.convo.prompt_ids()) <= self.threshold()


class Restart(Strategy):
    """At the cap, discard everything and start the task again, up to `max_restarts` times."""

    async def make_room(self, state: ContextState) -> bool:
        if state.restarts >= self.config.max_restarts:
            return False
        state.restarts += 1
        state.convo.restart(list(state.initial))
        return self.fits(state)


def make_strategy(protocol: Protocol, reserve: int) -> Strategy:
    kinds: dict[str, type[Strategy]] = {
        "hard_cap": HardCap,
        "keep_last_k": KeepLastK,
        "compaction": Compaction,
        "restart": Restart,
    }
    budgets = protocol.budgets
    return kinds[protocol.context.kind](protocol.context, budgets.max_context_tokens, reserve)
