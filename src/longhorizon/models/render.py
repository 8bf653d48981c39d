"""Render conversations to token ids with the tokenizer's own chat template.

Assistant messages in longhorizon trajectories keep the model's raw text in `content`, tool
calls included, so rendering them reproduces exactly the tokens the model produced. Messages
from an API (content empty, `tool_calls` set) are rendered by the template's tool-call format.
Tokenizers whose template ignores tools get longhorizon's ChatML-with-tools template.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.models.checkpoints import chat_template
from longhorizon.models.encoding import TokenEncoder

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_SENTINEL = "\u2063LH_END_OF_CONTENT\u2063"  # marks where assistant content ends in a render


def template_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as template dicts; raw assistant text wins over structured tool_calls."""
    out = []
    for m in messages:
        d = m.to_openai()
        if m.role == "assistant" and m.content:
            d.pop("tool_calls", None)
        d.setdefault("content", "")
        out.append(d)
    return out


def tools_payload(tools: list[ToolSpec] | None) -> list[dict[Any, Any] | Callable[..., Any]] | None:
    """The `tools` argument of `apply_chat_template` (typed as transformers declares it)."""
    return [t.to_openai() for t in tools] if tools else None


def decode_text(tokenizer: PreTrainedTokenizerBase, ids: list[int], *, skip_special: bool) -> str:
    """decode() of one sequence: a str (transformers types it for batches too)."""
    text = tokenizer.decode(ids, skip_special_tokens=skip_special)
    if not isinstance(text, str):
        raise TypeError(f"decode of one sequence returned {type(text).__name__}")
    return text


class ChatRenderer:
    """Text and token ids of a conversation, and the token delta between two model calls."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, template: str | None = None) -> None:
        self.tokenizer = tokenizer
        native = template or tokenizer.chat_template
        self.template = native if native and "tools" in native else chat_template()
        self._encoder = TokenEncoder(tokenizer)

    @property
    def generation_prompt(self) -> str:
        """The text the template appends to ask for an assistant turn."""
        probe = [Message(role="user", content="")]
        with_prompt = self.text(probe, add_generation_prompt=True)
        return with_prompt[len(self.text(probe)) :]

    def text(
        self,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        *,
        add_generation_prompt: bool = False,
    ) -> str:
        text = self.tokenizer.apply_chat_template(
            template_messages(messages),
            tools=tools_payload(tools),
            chat_template=self.template,
            add_generation_prompt=add_generation_prompt,
            tokenize=False,
        )
        if not isinstance(text, str):  # tokenize=False renders one conversation as text
            raise TypeError(f"chat template rendered {type(text).__name__}, not str")
        return text

    def encode(self, text: str) -> list[int]:
        return self._encoder.encode(text)

    def decode(self, ids: list[int]) -> str:
        return decode_text(self.tokenizer, ids, skip_special=False)

    def prompt_ids(self, messages: list[Message], tools: list[ToolSpec] | None = None) -> list[int]:
        """Token ids of the conversation followed by the assistant generation prompt."""
        return self.encode(self.text(messages, tools, add_generation_prompt=True))

    def assistant_tail(self, messages: list[Message], tools: list[ToolSpec] | None) -> str:
        """What the template writes after the last assistant message's content (e.g. an EOT)."""
        marked = [*messages[:-1], messages[-1].model_copy(update={"content": _SENTINEL})]
        rendered = self.text(marked, tools)
        return rendered[rendered.rindex(_SENTINEL) + len(_SENTINEL) :]

    def continuation_ids(
        self,
        history: list[Message],
        new_messages: list[Message],
        tools: list[ToolSpec] | None,
        generated_tail: str,
        tail: str | None = None,
    ) -> list[int]:
        """Tokens to append after a model call so the next prompt renders `history + new`.

        `history` ends with the assistant message just generated; `generated_tail` is the text
        of the end-of-turn token the model emitted after its content ("" if it did not stop);
        `tail` is the template's text after assistant content when the caller has it cached.
        """
        before = self.text(history, tools)
        after = self.text([*history, *new_messages], tools, add_generation_prompt=True)
        if not after.startswith(before):
            raise ValueError("chat template is not append-only for this conversation")
        tail = self.assistant_tail(history, tools) if tail is None else tail
        if generated_tail and not tail.startswith(generated_tail):
            raise ValueError(f"model stopped on {generated_tail!r}; template expects {tail!r}")
        return self.encode(tail[len(generated_tail) :] + after[len(before) :])
