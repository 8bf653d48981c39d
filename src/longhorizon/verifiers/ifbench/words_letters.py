"""IFBench `words:*` checkers about letters, lengths and repeats of words."""

from __future__ import annotations

import functools
import itertools
import string
from collections import Counter
from typing import Any, ClassVar

from longhorizon.verifiers.ifbench.base import Checker, Count, drop_punctuation
from longhorizon.verifiers.ifeval.nlp import IFEvalDependencyError

_ALPHABET = string.ascii_lowercase
_CONSONANTS = frozenset("bcdfghjklmnpqrstvwxyz")
_PRIMES = frozenset({2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47})
_PRIMES |= frozenset({53, 59, 61, 67, 71, 73, 79, 83, 89, 97})  # none longer: 100+ fails


class Alphabet(Checker):
    instruction_id: ClassVar[str] = "words:alphabet"
    template: ClassVar[str] = (
        "Each word must start with the next letter of the alphabet, looping back to 'A' after 'Z'."
    )

    def check(self, response: str) -> bool:
        words = drop_punctuation(response).split()
        if not words or words[0][0].lower() not in _ALPHABET:
            return False  # digits or non-ASCII letters cannot start the loop
        letter = _ALPHABET.index(words[0][0].lower())
        for word in words[1:]:
            letter = (letter + 1) % 26
            if word.lower()[0] != _ALPHABET[letter]:
                return False
        return True


class Vowel(Checker):
    instruction_id: ClassVar[str] = "words:vowel"
    template: ClassVar[str] = (
        "Write a paragraph using words that contain only three types of vowels."
    )

    def check(self, response: str) -> bool:
        lines = response.strip().split("\n")
        return len(lines) == 1 and len(set(lines[0].lower()) & set("aeiou")) <= 3


class Consonants(Checker):
    instruction_id: ClassVar[str] = "words:consonants"
    template: ClassVar[str] = (
        "Ensure each word in your response has at least one consonant cluster (two or more "
        "consonants together)."
    )

    def check(self, response: str) -> bool:
        # Words keep their punctuation: "it's" has no cluster ("t" then "'").
        return all(_has_cluster(word) for word in response.lower().split())


def _has_cluster(word: str) -> bool:
    return any(a in _CONSONANTS and b in _CONSONANTS for a, b in itertools.pairwise(word))


class Palindrome(Checker):
    instruction_id: ClassVar[str] = "words:palindrome"
    template: ClassVar[str] = (
        "Include at least 10 single-word palindromes, each at least 5 characters long."
    )

    def check(self, response: str) -> bool:
        words = drop_punctuation(response).lower().split()
        return sum(len(w) >= 5 and w == w[::-1] for w in words) >= 10  # repeats count


class PrimeLengths(Checker):
    instruction_id: ClassVar[str] = "words:prime_lengths"
    template: ClassVar[str] = "Use only words with lengths that are prime numbers."

    def check(self, response: str) -> bool:
        return all(len(word) in _PRIMES for word in drop_punctuation(response).split())


class NoConsecutive(Checker):
    instruction_id: ClassVar[str] = "words:no_consecutive"
    template: ClassVar[str] = "No two consecutive words can share the same first letter."

    def check(self, response: str) -> bool:
        words = drop_punctuation(response.lower()).split()
        return all(a[0] != b[0] for a, b in itertools.pairwise(words))


class Repeats(Checker):
    instruction_id: ClassVar[str] = "words:repeats"
    template: ClassVar[str] = "The response should not repeat any word more than {small_n} times."
    small_n: Count

    def check(self, response: str) -> bool:
        counts = Counter(drop_punctuation(response.lower()).split())
        return all(count <= self.small_n for count in counts.values())


@functools.cache
def _syllapy() -> Any:
    try:
        import syllapy
    except ImportError as error:
        raise IFEvalDependencyError(
            "IFBench's words:odd_even_syllables needs the PyPI package 'syllapy' "
            f"(`pip install syllapy`): {error}"
        ) from error
    return syllapy


class OddEvenSyllables(Checker):
    instruction_id: ClassVar[str] = "words:odd_even_syllables"
    template: ClassVar[str] = "Alternate between words with odd and even numbers of syllables."

    def check(self, response: str) -> bool:
        count = _syllapy().count
        parities = [count(word) % 2 for word in drop_punctuation(response).lower().split()]
        return all(a != b for a, b in itertools.pairwise(parities))
