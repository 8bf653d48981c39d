"""One episode as a conversation: messages in order, with what the harness did marked.

The trajectory's `messages` are the whole history across restarts and rollbacks; the k-th
assistant message is the k-th model call (every model turn is recorded with its call), which
is how rolled-back turns are marked `discarded`. Context boundaries are where the history
starts over with the episode's first message (a restart, a compaction, masked observations,
or a rollback of a context's first turn); the harness's own prompts (forced answer,
compaction request, digest) are recognised by the texts the harness writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from longhorizon.core import Finalisation, Message, Trajectory
from longhorizon.harness import force_answer_prompt
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER, OBSERVATION_REMOVED

__all__ = ["Entry", "ToolCallView", "conversation", "is_forced_prompt"]

PREVIEW_CHARS = 600  # longer observations show this much, the rest behind "show all"
_SENTINEL = "\x00"
_FORCED = force_answer_prompt(Finalisation(kind="last_message"), _SENTINEL)
_FORCED_HEAD = _FORCED.split(_SENTINEL)[0]
_FORCED_BODY = _FORCED.split(_SENTINEL)[1].rsplit(",", 1)[0]


def is_forced_prompt(text: str | None) -> bool:
    """True for the harness's prompt that forces a final answer at a budget."""
    return text is not None and text.startswith(_FORCED_HEAD) and _FORCED_BODY in text


@dataclass(frozen=True)
class ToolCallView:
    id: str
    name: str
    arguments: str  # pretty-printed JSON, or the raw text when it is not JSON


@dataclass(frozen=True)
class Entry:
    """A message, or a boundary line between contexts (`role` == "boundary")."""

    role: str
    text: str = ""
    tool_calls: tuple[ToolCallView, ...] = ()
    tool_call_id: str | None = None
    call: int | None = None  # the model call of an assistant message
    discarded: bool = False
    tags: tuple[str, ...] = ()  # forced answer, compaction request, digest, masked
    error: str | None = None  # the tool error of an observation

    @property
    def preview(self) -> str:
        return self.text[:PREVIEW_CHARS]

    @property
    def long(self) -> bool:
        return self.role == "tool" and len(self.text) > PREVIEW_CHARS


def _pretty(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), indent=2, ensure_ascii=False)
    except json.JSONDecodeError:
        return arguments


def _tags(message: Message) -> tuple[str, ...]:
    text = message.content or ""
    if message.role == "user" and is_forced_prompt(text):
        return ("forced final answer",)
    if message.role == "user" and text == COMPACT_PROMPT:
        return ("compaction request",)
    if message.role == "user" and text.startswith(DIGEST_HEADER):
        return ("compaction digest",)
    if message.role == "tool" and text == OBSERVATION_REMOVED:
        return ("masked",)
    return ()


def _boundary(history: list[Message], i: int) -> str:
    """What started a new context at history[i] (the episode's first message, again)."""
    rest = history[i : i + 8]
    if any(m.role == "user" and (m.content or "").startswith(DIGEST_HEADER) for m in rest):
        return "context boundary: compaction (the digest replaces the conversation)"
    if any(m.role == "tool" and m.content == OBSERVATION_REMOVED for m in history[i:]):
        return "context boundary: older observations masked (keep_last_k)"
    if any(m.role == "user" and is_forced_prompt(m.content) for m in rest[:4]):
        return "context boundary: the turn was rolled back, the context rebuilt"
    return "context boundary: restart (the task starts again)"


@dataclass
class _Walk:
    traj: Trajectory
    entries: list[Entry] = field(default_factory=list)
    assistant: int = 0
    pending_discarded: int = 0  # observations still to come of a rolled-back call

    def errors(self) -> dict[str, str]:
        return {s.action.id: s.error for s in self.traj.steps if s.error}

    def add(self, i: int, message: Message, errors: dict[str, str]) -> None:
        history = self.traj.messages
        if i > 0 and message == history[0]:
            self.entries.append(Entry(role="boundary", text=_boundary(history, i)))
        if message.role == "assistant":
            self.entries.append(self._assistant(message))
            return
        error = errors.get(message.tool_call_id or "") if message.role == "tool" else None
        discarded = message.role == "tool" and self.pending_discarded > 0
        self.pending_discarded -= discarded
        self.entries.append(
            Entry(
                role=message.role,
                text=message.content or "",
                tool_call_id=message.tool_call_id,
                discarded=discarded,
                tags=_tags(message),
                error=error,
            )
        )

    def _assistant(self, message: Message) -> Entry:
        k = self.assistant
        self.assistant += 1
        calls = self.traj.calls
        calls_view = tuple(
            ToolCallView(c.id, c.function.name, _pretty(c.function.arguments))
            for c in message.tool_calls or []
        )
        discarded = k < len(calls) and calls[k].discarded
        # Its observations were recorded too (one step per call or parse error), then
        # rolled back with it; the harness re-adds the earlier ones after the rollback.
        self.pending_discarded = sum(s.call_index == k for s in self.traj.steps) if discarded else 0
        return Entry(
            role="assistant",
            text=message.content or "",
            tool_calls=calls_view,
            call=k if k < len(calls) else None,
            discarded=discarded,
        )


def conversation(traj: Trajectory) -> list[Entry]:
    """The episode's entries in order (messages, boundaries), ready to render."""
    walk = _Walk(traj)
    errors = walk.errors()
    for i, message in enumerate(traj.messages):
        walk.add(i, message, errors)
    return walk.entries
