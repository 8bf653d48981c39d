"""IFEval ``punctuation:no_comma``: not a single comma in the response."""

from __future__ import annotations

from typing import ClassVar

from longhorizon.verifiers.ifeval.base import Instruction


class NoComma(Instruction):
    """The ASCII comma must not occur (other comma-like characters are allowed)."""

    instruction_id: ClassVar[str] = "punctuation:no_comma"

    def check(self, response: str) -> bool:
        return "," not in response

    def describe(self) -> str:
        return "Do not use any commas in your entire response."
