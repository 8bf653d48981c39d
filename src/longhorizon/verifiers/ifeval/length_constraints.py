"""IFEval ``length_constraints:*`` checkers: sentence, word and paragraph counts."""

from __future__ import annotations

import random
import re
from typing import ClassVar, Self

from pydantic import Field, field_validator, model_validator

from longhorizon.verifiers.ifeval.base import (
    Instruction,
    Relation,
    compare,
    relation_phrase,
    sample_relation,
)
from longhorizon.verifiers.ifeval.nlp import count_words, split_sentences
from longhorizon.verifiers.ifeval.vocab import PARAGRAPH_FIRST_WORDS

# A markdown divider, with at most one whitespace character eaten on either side.
_DIVIDER = re.compile(r"\s?\*\*\*\s?")
# First-word comparison stops at the first of these characters.
_WORD_END = frozenset(".,?!'\"")


class NumberSentences(Instruction):
    """The Punkt sentence count compared with a threshold."""

    instruction_id: ClassVar[str] = "length_constraints:number_sentences"
    num_sentences: int = Field(ge=1)
    relation: Relation

    def check(self, response: str) -> bool:
        return compare(len(split_sentences(response)), self.relation, self.num_sentences)

    def describe(self) -> str:
        amount = relation_phrase(self.relation, self.num_sentences, "sentences")
        return f"Use {amount} in total."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_sentences=rng.randint(2, 20), relation=sample_relation(rng))


class NumberWords(Instruction):
    """The count of word-character runs compared with a threshold."""

    instruction_id: ClassVar[str] = "length_constraints:number_words"
    num_words: int = Field(ge=1)
    relation: Relation

    def check(self, response: str) -> bool:
        return compare(count_words(response), self.relation, self.num_words)

    def describe(self) -> str:
        amount = relation_phrase(self.relation, self.num_words, "words")
        return f"Answer with {amount}."

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_words=rng.randrange(50, 601, 25), relation=sample_relation(rng))


def _divided_paragraph_count(response: str) -> int | None:
    """Paragraphs between ``***`` dividers; None when an inner paragraph is empty.

    An empty piece before the first divider or after the last one is not a paragraph
    (a response may open or close with a divider); an empty piece between two dividers
    breaks the format.
    """
    pieces = _DIVIDER.split(response)
    count = len(pieces)
    for index, piece in enumerate(pieces):
        if piece.strip():
            continue
        if index in (0, len(pieces) - 1):
            count -= 1
        else:
            return None
    return count


class NumberParagraphs(Instruction):
    """Exactly ``num_paragraphs`` paragraphs separated by the markdown divider ``***``."""

    instruction_id: ClassVar[str] = "length_constraints:number_paragraphs"
    num_paragraphs: int = Field(ge=1)

    def check(self, response: str) -> bool:
        return _divided_paragraph_count(response) == self.num_paragraphs

    def describe(self) -> str:
        return (
            f"Write exactly {self.num_paragraphs} paragraphs, separated from each other "
            "by the markdown divider ***."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_paragraphs=rng.randint(2, 6))


def _first_word(paragraph: str) -> str:
    """The paragraph's first word, lower-cased, without leading quotes or trailing punctuation."""
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    letters: list[str] = []
    for char in word:
        if char in _WORD_END:
            break
        letters.append(char.lower())
    return "".join(letters)


class NthParagraphFirstWord(Instruction):
    """``num_paragraphs`` blank-line-separated paragraphs, the nth starting with ``first_word``."""

    instruction_id: ClassVar[str] = "length_constraints:nth_paragraph_first_word"
    num_paragraphs: int = Field(ge=1)
    nth_paragraph: int = Field(ge=1)
    first_word: str = Field(min_length=1)

    @field_validator("first_word")
    @classmethod
    def _lower(cls, word: str) -> str:
        return word.lower()

    @model_validator(mode="after")
    def _nth_within_count(self) -> Self:
        if self.nth_paragraph > self.num_paragraphs:
            raise ValueError("nth_paragraph must not exceed num_paragraphs")
        return self

    def check(self, response: str) -> bool:
        pieces = response.split("\n\n")
        count = sum(1 for piece in pieces if piece.strip())
        if self.nth_paragraph > count:
            return False
        # The nth piece is counted over the raw split, empty pieces included, as IFEval does.
        paragraph = pieces[self.nth_paragraph - 1].strip()
        if not paragraph:
            return False
        return count == self.num_paragraphs and _first_word(paragraph) == self.first_word

    def describe(self) -> str:
        return (
            f"Write exactly {self.num_paragraphs} paragraphs separated by blank lines; "
            f'paragraph {self.nth_paragraph} must begin with the word "{self.first_word}".'
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        num_paragraphs = rng.randint(2, 5)
        return cls(
            num_paragraphs=num_paragraphs,
            nth_paragraph=rng.randint(1, num_paragraphs),
            first_word=rng.choice(PARAGRAPH_FIRST_WORDS),
        )
