"""IFEval ``change_case:*`` checkers: all-capital or all-lowercase English, capital words."""

from __future__ import annotations

import random
from typing import ClassVar, Self

from pydantic import Field

from longhorizon.verifiers.ifeval.base import (
    Instruction,
    Relation,
    compare,
    relation_phrase,
    sample_relation,
)
from longhorizon.verifiers.ifeval.nlp import detect_language, word_tokenize


def _is_english_or_undecided(response: str) -> bool:
    # Only consulted after the case test passes; text langdetect cannot judge is a pass.
    detected = detect_language(response)
    return detected is None or detected == "en"


class EnglishCapital(Instruction):
    """English text with no lower-case letters (``str.isupper``)."""

    instruction_id: ClassVar[str] = "change_case:english_capital"

    def check(self, response: str) -> bool:
        return response.isupper() and _is_english_or_undecided(response)

    def describe(self) -> str:
        return "Write the whole response in English using only capital letters."


class EnglishLowercase(Instruction):
    """English text with no capital letters (``str.islower``)."""

    instruction_id: ClassVar[str] = "change_case:english_lowercase"

    def check(self, response: str) -> bool:
        return response.islower() and _is_english_or_undecided(response)

    def describe(self) -> str:
        return (
            "Write the whole response in English, lower case throughout: "
            "not a single capital letter."
        )


class CapitalWordFrequency(Instruction):
    """The number of all-capital NLTK word tokens compared with a threshold."""

    instruction_id: ClassVar[str] = "change_case:capital_word_frequency"
    capital_frequency: int = Field(ge=1)
    capital_relation: Relation

    def check(self, response: str) -> bool:
        capitals = sum(1 for word in word_tokenize(response) if word.isupper())
        return compare(capitals, self.capital_relation, self.capital_frequency)

    def describe(self) -> str:
        amount = relation_phrase(self.capital_relation, self.capital_frequency, "times")
        return f"Words written entirely in capital letters should appear {amount} in your response."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(capital_frequency=rng.randint(1, 10), capital_relation=sample_relation(rng))
