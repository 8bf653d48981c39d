"""A conversation that grows by appending tokens: the token-in-token-out core of every episode.

Each model call's prompt is the previous call's exact sequence (prompt + generated ids) plus
the rendered delta of the new messages; nothing the model produced is ever re-tokenized.
"""

from __future__ import annotations

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.core.tokens import ModelCall, TokenSequence, call_sequence
from longhorizon.models.render import ChatRenderer
from longhorizon.models.toolcalls import ToolCallFormat, parse_tool_calls
from longhorizon.models.types import Completion, ToolCallError


class TokenConversation:
    """Messages, the model calls that produced the assistant turns, and the next prompt's ids."""

    def __init__(
        self,
        renderer: ChatRenderer,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        tool_format: ToolCallFormat = "auto",
    ) -> None:
        self.renderer = renderer
        self.tools = tools
        self.tool_format = tool_format
        self.messages: list[Message] = []  # the current context
        self.history: list[Message] = []  # everything, in order, across restarts and rollbacks
        self.calls: list[ModelCall] = []
        self._turns: list[tuple[int, str]] = []  # per call: its message index, end-of-turn text
        self.restart(messages)

    def restart(self, messages: list[Message]) -> None:
        """Start a fresh context (after compaction or a restart); earlier calls stay recorded."""
        self.messages = list(messages)
        self.history.extend(messages)
        self._parent: int | None = None
        self._prefix_len = 0
        self._eot_text = ""
        self._tail: str | None = None  # what the template writes after assistant content
        self._new_ids = self.renderer.prompt_ids(self.messages, self.tools)

    @property
    def in_turn(self) -> bool:
        """True once the model has taken a turn in the current context."""
        return self._parent is not None

    def prompt_ids(self) -> list[int]:
        """The exact token ids the next model call will see."""
        prefix = [] if self._parent is None else self.sequence(self._parent).input_ids
        return prefix[: self._prefix_len] + self._new_ids

    def sequence(self, index: int) -> TokenSequence:
        return call_sequence(self.calls, index)

    def record(self, completion: Completion) -> tuple[Message, list[ToolCallError]]:
        """Append the model's turn: its ModelCall and the assistant message with parsed calls."""
        content, eot_text = self._split_end_of_turn(completion)
        parsed = parse_tool_calls(content, self.tool_format, self.tools)
        message = Message(role="assistant", content=content, tool_calls=parsed.tool_calls or None)
        self.calls.append(
            ModelCall(
                parent=self._parent,
                prefix_len=self._prefix_len,
                new_prompt_ids=self._new_ids,
                completion_ids=completion.completion_ids,
                completion_logprobs=completion.logprobs,
                top_logprobs=completion.top_logprobs,
                finish_reason=completion.finish_reason,
                latency_s=completion.latency_s,
            )
        )
        self._turns.append((len(self.messages), eot_text))
        self.messages.append(message)
        self.history.append(message)
        self._eot_text = eot_text
        self._parent = len(self.calls) - 1
        self._prefix_len = len(self.sequence(self._parent))
        self._new_ids = []
        return message, parsed.errors

    def extend(self, new_messages: list[Message]) -> None:
        """Append tool results or user turns; the next prompt ends with a generation prompt.

        May be called several times before the next model call: the pending delta is
        recomputed from the last assistant turn, so it always renders all pending messages.
        """
        self.messages.extend(new_messages)
        self.history.extend(new_messages)
        if self._parent is None:  # no model turn in this context yet: render it whole
            self._new_ids = self.renderer.prompt_ids(self.messages, self.tools)
            return
        last, _ = self._turns[self._parent]
        self._new_ids = self.renderer.continuation_ids(
            self.messages[: last + 1],
            self.messages[last + 1 :],
            self.tools,
            self._eot_text,
            tail=self.assistant_tail(),
        )

    def rollback(self) -> list[Message]:
        """Discard the last model turn; returns the messages between the previous turn and it.

        Afterwards the conversation is as right after the previous turn was recorded, so the
        caller re-adds the returned messages (plus e.g. a final-answer prompt) with `extend`.
        The discarded call stays in `calls`, marked, so the record keeps the full history.
        """
        last = len(self.calls) - 1
        if last < 0:
            raise ValueError("nothing to roll back")
        call = self.calls[last]
        call.discarded = True
        index, _ = self._turns[last]
        parent = call.parent
        if parent is None:  # the first turn of its context: start that context again
            between = self.messages[:index]
            self.messages, self._parent, self._new_ids = [], None, []
            return between
        parent_index, parent_eot = self._turns[parent]
        between = self.messages[parent_index + 1 : index]
        self.messages = self.messages[: parent_index + 1]
        self._parent, self._eot_text, self._new_ids = parent, parent_eot, []
        self._prefix_len = len(self.sequence(parent))
        return between

    def assistant_tail(self) -> str:
        """The template's text after an assistant message's content, rendered once per context."""
        if self._tail is None:
            probe = [*self.messages, Message(role="assistant", content="")]
            self._tail = self.renderer.assistant_tail(probe, self.tools)
        return self._tail

    def _split_end_of_turn(self, completion: Completion) -> tuple[str, str]:
        """Content text, and the text of the final token if it is the template's end of turn."""
        ids = completion.completion_ids
        special = set(self.renderer.tokenizer.all_special_ids)
        if completion.finish_reason == "stop" and ids and ids[-1] in special:
            eot = self.renderer.decode(ids[-1:])
            if self.assistant_tail().startswith(eot):
                return self.renderer.decode(ids[:-1]), eot
        return self.renderer.decode(ids), ""
