"""IFBench `sentence:*` checkers: growing alliteration, growing length, a keyword's sentence."""

from __future__ import annotations

import itertools
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import PUNCTUATION, Checker, Count, drop_punctuation
from longhorizon.verifiers.ifbench.sentences import split_into_sentences


def alliteration(sentence: str) -> int:
    """Words in runs of two or more consecutive words sharing a first character."""
    words = [w.lstrip(PUNCTUATION + " ") for w in sentence.lower().split()]
    words = [w for w in words if w]
    score, in_run = 0, False
    for a, b in itertools.pairwise(words):
        if a[0] == b[0]:
            score += 1 if in_run else 2  # a new run counts both of its first two words
        in_run = a[0] == b[0]
    return score


class AlliterationIncrement(Checker):
    instruction_id: ClassVar[str] = "sentence:alliteration_increment"
    template: ClassVar[str] = (
        "Each sentence must have a longer sequence of consecutive alliterative words than "
        "the previous one."
    )

    def check(self, response: str) -> bool:
        scores = [alliteration(s) for s in split_into_sentences(response)]
        return all(a < b for a, b in itertools.pairwise(scores))


class Increment(Checker):
    instruction_id: ClassVar[str] = "sentence:increment"
    template: ClassVar[str] = (
        "Each sentence must contain exactly {small_n} more words than the previous one."
    )
    small_n: Count

    def check(self, response: str) -> bool:
        counts = [len(drop_punctuation(s).split()) for s in split_into_sentences(response)]
        if not counts:
            return False  # the reference indexes the first sentence
        return all(b == a + self.small_n for a, b in itertools.pairwise(counts))


class Keyword(Checker):
    instruction_id: ClassVar[str] = "sentence:keyword"
    template: ClassVar[str] = 'The response must include keyword "{word}" in the {N}-th sentence.'
    word: str
    N: Count

    def check(self, response: str) -> bool:
        sentences = split_into_sentences(response)
        if len(sentences) < self.N:
            return False
        # A substring of the sentence, case-insensitive.
        return self.word.lower() in sentences[self.N - 1].lower()
