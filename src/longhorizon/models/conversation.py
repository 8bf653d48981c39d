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
        self.messages: list[Message] = []
        self.calls: list[ModelCall] = []
        self.restart(messages)

    def restart(self, messages: list[Message]) -> None:
        """Start a fresh context (after compaction or a restart); earlier calls stay recorded."""
        self.messages = list(messages)
        self._parent: int | None = None
        self._prefix_len = 0
        self._new_ids = self.renderer.prompt_ids(self.messages, self.tools)

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
        self.messages.append(message)
        self._eot_text = eot_text
        self._parent = len(self.calls) - 1
        self._prefix_len = len(self.sequence(self._parent))
        self._new_ids = []
        return message, parsed.errors

    def extend(self, new_messages: list[Message]) -> None:
        """Append tool results or user turns; the next prompt ends with a generation prompt."""
        if self._parent is None or self.messages[-1].role != "assistant":
            raise ValueError("extend() follows record(): the last message must be the model's")
        self._new_ids = self.renderer.continuation_ids(
            self.messages, new_messages, self.tools, self._eot_text
        )
        self.messages.extend(new_messages)

    def _split_end_of_turn(self, completion: Completion) -> tuple[str, str]:
        """Content text, and the text of the final token if it is the template's end of turn."""
        ids = completion.completion_ids
        special = set(self.renderer.tokenizer.all_special_ids)
        if completion.finish_reason == "stop" and ids and ids[-1] in special:
            eot = self.renderer.decode(ids[-1:])
            probe = [*self.messages, Message(role="assistant", content="")]
            if self.renderer.assistant_tail(probe, self.tools).startswith(eot):
                return self.renderer.decode(ids[:-1]), eot
        return self.renderer.decode(ids), ""
