"""IFBench `ratio:*` checkers: stop words, sentence types, trigram overlap, sentence lengths."""

from __future__ import annotations

import re
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker, Count
from longhorizon.verifiers.ifbench.sentences import split_into_sentences
from longhorizon.verifiers.ifbench.stopwords import ENGLISH_STOPWORDS


def _sentence_ends(response: str) -> tuple[int, int, int]:
    """How many sentences end in ".", "?" and "!"."""
    sentences = split_into_sentences(response)
    ends = [sum(s.endswith(mark) for s in sentences) for mark in ".?!"]
    return ends[0], ends[1], ends[2]


class StopWords(Checker):
    instruction_id: ClassVar[str] = "ratio:stop_words"
    template: ClassVar[str] = (
        "Ensure that stop words constitute no more than {percentage}% of the total words in "
        "your response."
    )
    percentage: Count

    def check(self, response: str) -> bool:
        words = re.findall(r"\w+", response)
        if not words:
            return False  # no words, no percentage (the reference divides by zero)
        stop = sum(word.lower() in ENGLISH_STOPWORDS for word in words)
        return stop / len(words) * 100 <= self.percentage


class SentenceType(Checker):
    instruction_id: ClassVar[str] = "ratio:sentence_type"
    template: ClassVar[str] = "Maintain a 2:1 ratio of declarative to interrogative sentences."

    def check(self, response: str) -> bool:
        declarative, interrogative, _ = _sentence_ends(response)
        return declarative == 2 * interrogative


class SentenceBalance(Checker):
    instruction_id: ClassVar[str] = "ratio:sentence_balance"
    template: ClassVar[str] = (
        "Ensure that the ratio of sentence types (declarative, interrogative, exclamatory) "
        "is balanced."
    )

    def check(self, response: str) -> bool:
        declarative, interrogative, exclamatory = _sentence_ends(response)
        return declarative == interrogative == exclamatory


def _char_trigrams(text: str) -> set[str]:
    return {text[i : i + 3] for i in range(len(text) - 2)}


class Overlap(Checker):
    instruction_id: ClassVar[str] = "ratio:overlap"
    template: ClassVar[str] = (
        "Maintain a trigram overlap of {percentage}% (±2%) with the provided reference text."
    )
    reference_text: str
    percentage: Count

    def check(self, response: str) -> bool:
        # Trigrams of characters, not words: the reference runs nltk.ngrams on the string.
        mine = _char_trigrams(response)
        if not mine:
            return False
        overlap = len(mine & _char_trigrams(self.reference_text)) / len(mine) * 100
        return self.percentage - 2 <= overlap <= self.percentage + 2


class SentenceWords(Checker):
    instruction_id: ClassVar[str] = "ratio:sentence_words"
    template: ClassVar[str] = (
        "Respond with three sentences, all containing the same number of characters but using "
        "all different words."
    )

    def check(self, response: str) -> bool:
        # Only the three equal lengths are checked, as in the reference; not the words.
        lengths = {len(s.strip()) for s in split_into_sentences(response)}
        return len(split_into_sentences(response)) == 3 and len(lengths) == 1
