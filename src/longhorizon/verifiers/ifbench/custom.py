"""IFBench `custom:*` checkers: one fixed task each (numbers, questions, lists, dates)."""

from __future__ import annotations

import itertools
import re
import unicodedata
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker, drop_punctuation, strip_punctuation
from longhorizon.verifiers.ifbench.sentences import split_into_sentences

# Capitals of European countries north of 45°N, by latitude, highest first.
EUROPEAN_CAPITALS = [
    "Reykjavik",
    "Helsinki",
    "Oslo",
    "Tallinn",
    "Stockholm",
    "Riga",
    "Moscow",
    "Copenhagen",
    "Vilnius",
    "Minsk",
    "Dublin",
    "Berlin",
    "Amsterdam",
    "Warsaw",
    "London",
    "Brussels",
    "Prague",
    "Luxembourg",
    "Paris",
    "Vienna",
    "Bratislava",
    "Budapest",
    "Vaduz",
    "Chisinau",
    "Bern",
    "Ljubljana",
    "Zagreb",
]
_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")
_QUESTION_LABEL = re.compile(r"\n*(?:Question \d+[\.|\):;]?\s*)")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31}
_DAYS_IN_MONTH |= {11: 30, 12: 31}


def ascii_fold(text: str) -> str:
    """Accents dropped ("São Tomé" -> "Sao Tome"); other non-ASCII characters too."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


class Multiples(Checker):
    instruction_id: ClassVar[str] = "custom:multiples"
    template: ClassVar[str] = "Count from 10 to 50 but only print multiples of 7."

    def check(self, response: str) -> bool:
        numbers = re.findall(r"\d+", response.replace(",", ", "))
        return numbers == [str(n) for n in range(14, 51, 7)]


def _question_parts(question: str) -> tuple[str, int]:
    """The question's text (lines before its first option) and its number of options."""
    text, options = "", 0
    for line in question.split("\n"):
        if _OPTION_LINE.match(line.strip()):
            options += 1
        elif not options:
            text += " " + line.strip()
    return text.strip(), options


class McqCountLength(Checker):
    instruction_id: ClassVar[str] = "custom:mcq_count_length"
    template: ClassVar[str] = (
        "Generate 4 multiple choice questions with 5 options each about '20th century art "
        'history\'. Each question should start with the label "Question". The questions '
        "should get progressively longer. Do not provide an explanation."
    )

    def check(self, response: str) -> bool:
        if not response.startswith("Question"):
            return False  # something came before the first question
        pieces = [p.strip() for p in _QUESTION_LABEL.split(response)]
        parts = [_question_parts(p) for p in pieces if p]
        if len(parts) != 4 or any(options != 5 for _, options in parts):
            return False
        return all(len(a) < len(b) for (a, _), (b, _) in itertools.pairwise(parts))


class ReverseNewline(Checker):
    instruction_id: ClassVar[str] = "custom:reverse_newline"
    template: ClassVar[str] = (
        "List the countries of Africa in reverse alphabetical order, each on a new line."
    )

    def check(self, response: str) -> bool:
        lines = [strip_punctuation(line) for line in response.split("\n")]
        lines = [line for line in lines if line]
        start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
        if start is None or len(lines) - start < 52:
            return False
        listed = [ascii_fold(line) for line in lines[start:]]
        return listed == sorted(listed, reverse=True)


class WordReverse(Checker):
    instruction_id: ClassVar[str] = "custom:word_reverse"
    template: ClassVar[str] = (
        "What animal is the national symbol of the US? Respond to this query, but make your "
        "sentence in reverse order of what it should be, per word."
    )

    def check(self, response: str) -> bool:
        text = " ".join(drop_punctuation(response.lower().strip()).split()[::-1])
        # Read backwards, it names the bald eagle and is one sentence.
        return "bald eagle" in text and text in split_into_sentences(text)


class CharacterReverse(Checker):
    instruction_id: ClassVar[str] = "custom:character_reverse"
    template: ClassVar[str] = (
        "What animal is the national symbol of the US? Respond to this query, but make your "
        "sentence in reverse order of what it should be, per letter."
    )

    def check(self, response: str) -> bool:
        return "elgae dlab" in response.lower()


class SentenceAlphabet(Checker):
    instruction_id: ClassVar[str] = "custom:sentence_alphabet"
    template: ClassVar[str] = (
        "Tell me a 26-sentence story where each sentence's first word starts with the letters "
        "of the alphabet in order."
    )

    def check(self, response: str) -> bool:
        sentences = split_into_sentences(response)
        if len(sentences) != 26:
            return False
        firsts = [s.split()[0].lower()[0] if s.split() else "" for s in sentences]
        return firsts == [chr(ord("a") + i) for i in range(26)]


class EuropeanCapitalsSort(Checker):
    instruction_id: ClassVar[str] = "custom:european_capitals_sort"
    template: ClassVar[str] = (
        "Give me the names of all capital cities of european countries whose latitude is "
        "higher than than 45 degrees? List the capital cities without country names, "
        "separated by commas, sorted by latitude, from highest to lowest."
    )

    def check(self, response: str) -> bool:
        named = [name.strip() for name in ascii_fold(response).split(",") if name.strip()]
        return named == EUROPEAN_CAPITALS


def _plausible_date(text: str) -> bool:
    """YYYY-MM-DD with a year in Napoleon's lifetime and a day the month can have."""
    if not _DATE.match(text):
        return False
    year, month, day = (int(part) for part in text.split("-"))
    return 1769 <= year <= 1821 and month <= 12 and day <= _DAYS_IN_MONTH.get(month, day)


class DateFormatList(Checker):
    instruction_id: ClassVar[str] = "custom:date_format_list"
    template: ClassVar[str] = (
        "List the start dates of all the battles Napoleon fought separated by commas, use the "
        "following date format: YYYY-MM-DD. Do not provide an explanation."
    )

    def check(self, response: str) -> bool:
        return all(_plausible_date(date.strip()) for date in response.strip().split(","))
