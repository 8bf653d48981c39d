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
from dataclasses import dataclass, field, replace

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
    return "context boundary: restart (the task starts again)"


def _masked_copy(block: list[Message], context: list[Message]) -> bool:
    """True when `block` is `context` with some observations masked (a keep_last_k restart)."""
    if not context or len(block) != len(context):
        return False
    return all(
        b == c or (b.role == c.role == "tool" and b.content == OBSERVATION_REMOVED)
        for b, c in zip(block, context, strict=True)
    )


@dataclass
class _Walk:
    """Replays the history against a model of the current context, so that messages the
    harness re-sent (after a rollback, or carried into a keep_last_k restart) are told apart
    from new ones, and the k-th *new* assistant message is model call k."""

    traj: Trajectory
    entries: list[Entry] = field(default_factory=list)
    context: list[Message] = field(default_factory=list)
    calls: int = 0
    pending_discarded: int = 0  # observations still to come of a rolled-back call
    resent: int = 0  # messages still to come that the harness re-sent after a rollback

    def run(self) -> list[Entry]:
        history, errors = self.traj.messages, self.errors()
        i = 0
        while i < len(history):
            i = self.step(history, i, errors)
        return self.entries

    def errors(self) -> dict[str, str]:
        return {s.action.id: s.error for s in self.traj.steps if s.error}

    def step(self, history: list[Message], i: int, errors: dict[str, str]) -> int:
        """Handle history[i]; returns the index of the next message to handle."""
        message = history[i]
        if self.pending_discarded and message.role == "tool":  # rolled back with its call
            self.pending_discarded -= 1
            self.entries.append(replace(self._plain(message, errors, ()), discarded=True))
            return i + 1
        if self.resent:
            self.resent -= 1
            self.entries.append(self._plain(message, errors, ("re-sent after the rollback",)))
            return i + 1
        if i > 0 and message == history[0]:
            block = history[i : i + len(self.context)]
            if _masked_copy(block, self.context):
                masked = sum(
                    b.content == OBSERVATION_REMOVED != c.content
                    for b, c in zip(block, self.context, strict=True)
                )
                self.entries.append(
                    Entry(
                        role="boundary",
                        text=f"context boundary: older observations masked (keep_last_k): the "
                        f"context restarts with its {len(block)} messages, {masked} more masked",
                    )
                )
                self.context = list(block)
                return i + len(block)
            self.entries.append(Entry(role="boundary", text=_boundary(history, i)))
            self.context = []
        if message.role == "assistant":
            self.entries.append(self._assistant(message))
        else:
            self.entries.append(self._plain(message, errors, _tags(message)))
            self.context.append(message)
        return i + 1

    def _plain(self, message: Message, errors: dict[str, str], tags: tuple[str, ...]) -> Entry:
        error = errors.get(message.tool_call_id or "") if message.role == "tool" else None
        return Entry(
            role=message.role,
            text=message.content or "",
            tool_call_id=message.tool_call_id,
            tags=tags,
            error=error,
        )

    def _assistant(self, message: Message) -> Entry:
        k = self.calls
        self.calls += 1
        calls = self.traj.calls
        discarded = k < len(calls) and calls[k].discarded
        if discarded:  # it and its observations leave the context; what came between its
            # parent turn and it is sent again by the harness (models/conversation.rollback)
            turns = [j for j, m in enumerate(self.context) if m.role == "assistant"]
            parent = turns[-1] if turns else -1
            self.resent = len(self.context) - parent - 1
            self.pending_discarded = sum(s.call_index == k for s in self.traj.steps)
        else:
            self.context.append(message)
        return Entry(
            role="assistant",
            text=message.content or "",
            tool_calls=tuple(
                ToolCallView(c.id, c.function.name, _pretty(c.function.arguments))
                for c in message.tool_calls or []
            ),
            call=k if k < len(calls) else None,
            discarded=discarded,
        )


def conversation(traj: Trajectory) -> list[Entry]:
    """The episode's entries in order (messages, boundaries), ready to render."""
    return _Walk(traj).run()
