"""IFEval ``startend:*`` checkers: a fixed closing phrase, or quotes around everything."""

from __future__ import annotations

import random
from typing import ClassVar, Self

from pydantic import Field

from longhorizon.verifiers.ifeval.base import Instruction
from longhorizon.verifiers.ifeval.vocab import END_PHRASES


class EndChecker(Instruction):
    """The response ends with ``end_phrase`` (case-insensitive, outer quotes ignored)."""

    instruction_id: ClassVar[str] = "startend:end_checker"
    end_phrase: str = Field(min_length=1)

    def check(self, response: str) -> bool:
        ending = response.strip().strip('"').lower()
        return ending.endswith(self.end_phrase.strip().lower())

    def describe(self) -> str:
        return (
            f'The very last words of the response must be "{self.end_phrase}", '
            "with nothing after them."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(end_phrase=rng.choice(END_PHRASES))


class Quotation(Instruction):
    """The whole response is wrapped in double quotation marks."""

    instruction_id: ClassVar[str] = "startend:quotation"

    def check(self, response: str) -> bool:
        text = response.strip()
        return len(text) > 1 and text[0] == '"' and text[-1] == '"'

    def describe(self) -> str:
        return "Put the whole response between one pair of double quotes."
