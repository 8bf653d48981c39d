"""Filtered sentence writing from a language pool: the raw material of the expert's responses.

A :class:`TextFilter` says what generated text must leave out (forbidden words, keywords
whose counts the constraints control, a letter that must stay rare). A :class:`Writer`
filters the pool's pieces once and then builds sentences, phrases and titles from what is
left; when a pool runs dry it raises :class:`Infeasible` and the task is resampled.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from longhorizon.domains.instruction.pools import LanguagePool

Mode = Literal["short", "medium", "long"]
MODES: tuple[Mode, ...] = ("medium", "short", "long")


class Infeasible(ValueError):
    """The expert cannot write a response that meets the constraints."""


@dataclass(frozen=True)
class TextFilter:
    """What generated text must not contain."""

    forbidden: tuple[str, ...] = ()  # whole words, any case
    avoid: tuple[str, ...] = ()  # substrings, any case
    banned_letter: str | None = None

    def allows(self, text: str) -> bool:
        lower = text.lower()
        if self.banned_letter and self.banned_letter in lower:
            return False
        if any(word.lower() in lower for word in self.avoid):
            return False
        return not any(
            re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) for word in self.forbidden
        )

    def keep(self, pieces: Sequence[str]) -> list[str]:
        return [piece for piece in pieces if self.allows(piece)]


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def decapitalise(text: str) -> str:
    """Lower the first letter (the sentence then follows a prefixed word)."""
    return text[:1].lower() + text[1:]


class Writer:
    """Sentences and phrases in one language about one topic, through one filter."""

    def __init__(self, pool: LanguagePool, topic: str, text_filter: TextFilter) -> None:
        self.pool = pool
        self.filter = text_filter
        fill = [piece.replace("{topic}", topic) for piece in pool.subjects]
        self.subjects = text_filter.keep(fill)
        self.predicates = text_filter.keep(pool.predicates)
        self.complements = text_filter.keep(pool.complements)
        self.conjunctions = text_filter.keep(pool.conjunctions)
        self.phrases = text_filter.keep(pool.phrases)
        self.titles = text_filter.keep([t.replace("{topic}", topic) for t in pool.titles])
        self.placeholders = text_filter.keep(pool.placeholders)
        self.postscripts = text_filter.keep(pool.postscripts)
        if not (self.subjects and self.predicates):
            raise Infeasible("no sentence survives the text filter")

    def clause(self, rng: random.Random, with_complement: bool) -> str:
        parts = [rng.choice(self.subjects), rng.choice(self.predicates)]
        if with_complement and self.complements:
            parts.append(rng.choice(self.complements))
        return " ".join(parts)

    def sentence(self, rng: random.Random, mode: Mode) -> str:
        if mode == "short":
            return capitalise(self.clause(rng, False)) + "."
        first = self.clause(rng, True)
        if mode == "long" and self.conjunctions:
            second = self.clause(rng, True)
            first = f"{first} {rng.choice(self.conjunctions)} {second}"
        return capitalise(first) + "."

    @staticmethod
    def _pick(rng: random.Random, pieces: list[str], what: str) -> str:
        if not pieces:
            raise Infeasible(f"no {what} survives the text filter")
        return rng.choice(pieces)

    def phrase(self, rng: random.Random) -> str:
        return self._pick(rng, self.phrases, "phrase")

    def phrases_n(self, rng: random.Random, count: int) -> list[str]:
        """`count` phrases, distinct while the pool lasts."""
        if not self.phrases:
            raise Infeasible("no phrase survives the text filter")
        order = rng.sample(self.phrases, len(self.phrases))
        return [order[i % len(order)] for i in range(count)]

    def title(self, rng: random.Random) -> str:
        return capitalise(self._pick(rng, self.titles, "title"))

    def postscript(self, rng: random.Random) -> str:
        return self._pick(rng, self.postscripts, "postscript")

    def join(self, items: Sequence[str]) -> str:
        """Items joined by the language's "and" (no commas anywhere)."""
        return f" {self.pool.joiner} ".join(items)
