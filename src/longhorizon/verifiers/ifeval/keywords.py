"""IFEval ``keywords:*`` checkers: required, counted, forbidden words and letter counts."""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from typing import ClassVar, Self

from pydantic import Field, field_validator

from longhorizon.verifiers.ifeval.base import (
    Instruction,
    Relation,
    compare,
    relation_phrase,
    sample_relation,
)
from longhorizon.verifiers.ifeval.vocab import FORBIDDEN_WORDS, KEYWORDS


def _quoted(words: list[str]) -> str:
    return ", ".join(f'"{word}"' for word in words)


class KeywordExistence(Instruction):
    """Every keyword must occur, as a case-insensitive substring."""

    instruction_id: ClassVar[str] = "keywords:existence"
    keywords: list[str] = Field(min_length=1)

    def check(self, response: str) -> bool:
        # Substring match, not whole word: "cat" is found inside "category", as in IFEval.
        return all(re.search(re.escape(k), response, re.IGNORECASE) for k in self.keywords)

    def describe(self) -> str:
        return f"Make sure your response includes the keywords {_quoted(self.keywords)}."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(keywords=rng.sample(KEYWORDS, rng.randint(1, 3)))


class KeywordFrequency(Instruction):
    """A keyword's case-insensitive substring count compared with a threshold."""

    instruction_id: ClassVar[str] = "keywords:frequency"
    keyword: str = Field(min_length=1)
    frequency: int = Field(ge=1)
    relation: Relation

    def check(self, response: str) -> bool:
        count = len(re.findall(re.escape(self.keyword), response, re.IGNORECASE))
        return compare(count, self.relation, self.frequency)

    def describe(self) -> str:
        times = relation_phrase(self.relation, self.frequency, "times")
        return f'The word "{self.keyword}" should appear {times} in your response.'

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(
            keyword=rng.choice(KEYWORDS),
            frequency=rng.randint(1, 4),
            relation=sample_relation(rng),
        )


class ForbiddenWords(Instruction):
    """None of the words may occur as a whole word, in any case."""

    instruction_id: ClassVar[str] = "keywords:forbidden_words"
    forbidden_words: list[str] = Field(min_length=1)

    def check(self, response: str) -> bool:
        return not any(
            re.search(rf"\b{re.escape(word)}\b", response, re.IGNORECASE)
            for word in self.forbidden_words
        )

    def describe(self) -> str:
        return f"Do not use any of these words in your response: {_quoted(self.forbidden_words)}."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(forbidden_words=rng.sample(FORBIDDEN_WORDS, rng.randint(1, 3)))


class LetterFrequency(Instruction):
    """How often one character occurs, case-insensitively, compared with a threshold."""

    instruction_id: ClassVar[str] = "keywords:letter_frequency"
    letter: str = Field(min_length=1, max_length=1)
    let_frequency: int = Field(ge=1)
    let_relation: Relation

    @field_validator("letter")
    @classmethod
    def _lower(cls, letter: str) -> str:
        # Counting is on the lower-cased response, so the letter is lower-cased too.
        return letter.lower()

    def check(self, response: str) -> bool:
        count = Counter(response.lower())[self.letter]
        return compare(count, self.let_relation, self.let_frequency)

    def describe(self) -> str:
        times = relation_phrase(self.let_relation, self.let_frequency, "times")
        return f'The letter "{self.letter}" should appear {times} in your response.'

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(
            letter=rng.choice(string.ascii_lowercase),
            let_frequency=rng.randint(1, 12),
            let_relation=sample_relation(rng),
        )
