"""IFBench `words:*` checkers about where words stand: first, last, n-th, repeated."""

from __future__ import annotations

import itertools
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import PUNCTUATION, Checker, Count
from longhorizon.verifiers.ifbench.sentences import split_into_sentences
from longhorizon.verifiers.ifbench.verbs import starts_with_verb
from longhorizon.verifiers.ifeval.nlp import word_tokenize


class StartVerb(Checker):
    """Approximate: the reference asks NLTK's perceptron POS tagger (see `verbs`)."""

    instruction_id: ClassVar[str] = "words:start_verb"
    template: ClassVar[str] = "The response must start with a verb."

    def check(self, response: str) -> bool:
        return starts_with_verb(response)


class LastFirst(Checker):
    instruction_id: ClassVar[str] = "words:last_first"
    template: ClassVar[str] = (
        "The last word of each sentence must become the first word of the next sentence."
    )

    def check(self, response: str) -> bool:
        sentences = split_into_sentences(response)
        for before, after in itertools.pairwise(sentences):
            last = before.rstrip(PUNCTUATION + " ").split()
            first = after.lstrip(PUNCTUATION + " ").split()
            if not last or not first or last[-1].lower() != first[0].lower():
                return False
        return True


class ParagraphLastFirst(Checker):
    instruction_id: ClassVar[str] = "words:paragraph_last_first"
    template: ClassVar[str] = (
        "Each paragraph must end with the same word it started with, separate paragraphs "
        "with a newline."
    )

    def check(self, response: str) -> bool:
        for line in response.split("\n"):
            # Only the paragraph's ends lose punctuation: "so, ... so" compares "so," to "so".
            words = line.strip().lower().strip(PUNCTUATION + " ").split()
            if words and words[0] != words[-1]:
                return False
        return True


class KeywordsSpecificPosition(Checker):
    instruction_id: ClassVar[str] = "words:keywords_specific_position"
    template: ClassVar[str] = (
        "Include keyword {keyword} in the {n}-th sentence, as the {m}-th word of that sentence."
    )
    keyword: str
    n: Count
    m: Count

    def check(self, response: str) -> bool:
        # Sentences from the rule-based splitter, words from NLTK's word_tokenize; the
        # keyword must match the token exactly, case included.
        sentences = split_into_sentences(response)
        if len(sentences) < self.n:
            return False
        words = word_tokenize(sentences[self.n - 1])
        return len(words) >= self.m and words[self.m - 1] == self.keyword.strip()


class WordsPosition(Checker):
    instruction_id: ClassVar[str] = "words:words_position"
    template: ClassVar[str] = (
        "The second word in your response and the second to last word in your response "
        "should be the word {keyword}."
    )
    keyword: str

    def check(self, response: str) -> bool:
        words = word_tokenize(response)
        return len(words) >= 2 and words[1] == words[-2] == self.keyword.strip()
