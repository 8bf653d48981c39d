"""IFEval ``combination:*`` checkers: repeat the request first, or give two responses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from longhorizon.verifiers.ifeval.base import Instruction

RESPONSE_SEPARATOR = "******"


class RepeatPrompt(Instruction):
    """The response starts by repeating ``prompt_to_repeat`` verbatim (case-insensitive).

    ``prompt_to_repeat`` is the request without the repeat instruction itself. When the
    kwargs leave it out, the prompt given to :meth:`from_kwargs` is used, so a synthesised
    task should pass the bare request explicitly when its prompt carries more text.
    """

    instruction_id: ClassVar[str] = "combination:repeat_prompt"
    prompt_to_repeat: str | None = None

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], prompt: str) -> Self:
        merged = dict(kwargs)
        # An empty prompt would make every response pass, so it is never substituted.
        if merged.get("prompt_to_repeat") is None and prompt:
            merged["prompt_to_repeat"] = prompt
        return cls.model_validate(merged)

    def check(self, response: str) -> bool:
        if self.prompt_to_repeat is None:
            raise ValueError("combination:repeat_prompt needs prompt_to_repeat or a prompt")
        return response.strip().lower().startswith(self.prompt_to_repeat.strip().lower())

    def describe(self) -> str:
        return (
            "Begin by restating the request exactly as it was written (and nothing before it), "
            "then answer it; do not restate this instruction."
        )


class TwoResponses(Instruction):
    """Exactly two different non-empty responses separated by six asterisks."""

    instruction_id: ClassVar[str] = "combination:two_responses"

    def check(self, response: str) -> bool:
        parts = response.split(RESPONSE_SEPARATOR)
        answers: list[str] = []
        for index, part in enumerate(parts):
            if part.strip():
                answers.append(part)
            elif index not in (0, len(parts) - 1):
                # An empty part between two separators means a malformed split.
                return False
        return len(answers) == 2 and answers[0].strip() != answers[1].strip()

    def describe(self) -> str:
        return (
            "Give two different responses, separated by six asterisks (******) "
            "and nothing else between them."
        )
