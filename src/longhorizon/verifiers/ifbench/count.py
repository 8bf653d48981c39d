"""IFBench `count:*` checkers: words, numbers, names, pronouns, punctuation, keywords."""

from __future__ import annotations

import re
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker, Count, drop_punctuation, strip_punctuation
from longhorizon.verifiers.ifeval.nlp import count_words

# The names the prompt offers; IFBench counts each one found anywhere in the text
# (a plain, case-sensitive substring test, so "Leo" is found in "Leon").
PERSON_NAMES = [
    "Emma",
    "Liam",
    "Sophia",
    "Jackson",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Isabella",
    "Mason",
    "Mia",
    "Ethan",
    "Charlotte",
    "Alexander",
    "Amelia",
    "Benjamin",
    "Harper",
    "Leo",
    "Zoe",
    "Daniel",
    "Chloe",
    "Samuel",
    "Lily",
    "Matthew",
    "Grace",
    "Owen",
    "Abigail",
    "Gabriel",
    "Ella",
    "Jacob",
    "Scarlett",
    "Nathan",
    "Victoria",
    "Elijah",
    "Layla",
    "Nicholas",
    "Audrey",
    "David",
    "Hannah",
    "Christopher",
    "Penelope",
    "Thomas",
    "Nora",
    "Andrew",
    "Aria",
    "Joseph",
    "Claire",
    "Ryan",
    "Stella",
    "Jonathan",
]
CONJUNCTIONS = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})
PRONOUNS = frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "us",
        "our",
        "ours",
        "ourselves",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "he",
        "him",
        "his",
        "himself",
        "she",
        "her",
        "hers",
        "herself",
        "it",
        "its",
        "itself",
        "they",
        "them",
        "their",
        "theirs",
        "themselves",
    ]
)
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")  # kana and CJK ideographs


class WordCountRange(Checker):
    instruction_id: ClassVar[str] = "count:word_count_range"
    template: ClassVar[str] = "The response must contain between {min_words} and {max_words} words."
    min_words: Count
    max_words: Count

    def check(self, response: str) -> bool:
        return self.min_words <= count_words(response) <= self.max_words


class UniqueWordCount(Checker):
    instruction_id: ClassVar[str] = "count:unique_word_count"
    template: ClassVar[str] = "Use at least {N} unique words in the response."
    N: Count

    def check(self, response: str) -> bool:
        unique = {strip_punctuation(word) for word in response.lower().split()}
        return len(unique) >= self.N


class Conjunctions(Checker):
    instruction_id: ClassVar[str] = "count:conjunctions"
    template: ClassVar[str] = (
        "Use at least {small_n} different coordinating conjunctions in the response."
    )
    small_n: Count

    def check(self, response: str) -> bool:
        # The reference keeps each matching token as written, so "and" and "And," differ.
        found = {w for w in response.split() if strip_punctuation(w).lower() in CONJUNCTIONS}
        return len(found) >= self.small_n


class PersonNames(Checker):
    instruction_id: ClassVar[str] = "count:person_names"
    template: ClassVar[str] = (
        "Mention at least {N} different person names in the response, from this list of "
        "person names: " + ", ".join(PERSON_NAMES) + "."
    )
    N: Count

    def check(self, response: str) -> bool:
        return sum(name in response for name in PERSON_NAMES) >= self.N


class Numbers(Checker):
    instruction_id: ClassVar[str] = "count:numbers"
    template: ClassVar[str] = "Include exactly {N} numbers in the response."
    N: Count

    def check(self, response: str) -> bool:
        # Punctuation goes first, so "3.14" and "1,000" are one number each.
        return len(re.findall(r"\d+", drop_punctuation(response))) == self.N


class Punctuation(Checker):
    instruction_id: ClassVar[str] = "count:punctuation"
    template: ClassVar[str] = (
        "Use every standard punctuation mark at least once, including semicolons, colons, "
        "and the interrobang (?!)."
    )

    def check(self, response: str) -> bool:
        if not any(mark in response for mark in ("?!", "!?", "‽")):
            return False
        # One interrobang is used up, so "?" and "!" must also appear on their own.
        rest = response.replace("?!", "", 1)
        if rest == response:
            rest = response.replace("!?", "", 1)
        return set(".,!?;:") <= set(rest)


class KeywordsMultiple(Checker):
    instruction_id: ClassVar[str] = "count:keywords_multiple"
    template: ClassVar[str] = (
        "Include keyword {keyword1} once in your response, keyword {keyword2} twice in your "
        "response, keyword {keyword3} three times in your response, keyword {keyword4} five "
        "times in your response, and keyword {keyword5} seven times in your response."
    )
    keyword1: str
    keyword2: str
    keyword3: str
    keyword4: str
    keyword5: str
    _times: ClassVar[tuple[int, ...]] = (1, 2, 3, 5, 7)

    def check(self, response: str) -> bool:
        text = response.lower()
        keywords = (self.keyword1, self.keyword2, self.keyword3, self.keyword4, self.keyword5)
        # Substring occurrences, case-insensitive: "nebulae" counts for "nebula".
        return all(
            text.count(k.strip().lower()) == n for k, n in zip(keywords, self._times, strict=True)
        )


class Pronouns(Checker):
    instruction_id: ClassVar[str] = "count:pronouns"
    template: ClassVar[str] = "The response should include at least {N} pronouns."
    N: Count

    def check(self, response: str) -> bool:
        # A slash separates words, so "she/her/hers" is three pronouns.
        words = drop_punctuation(response.replace("/", " ").lower()).split()
        return sum(word in PRONOUNS for word in words) >= self.N


class WordsJapanese(Checker):
    instruction_id: ClassVar[str] = "count:words_japanese"
    template: ClassVar[str] = "Every {N}th word of your response must be in Japanese."
    N: Count

    def check(self, response: str) -> bool:
        for position, raw in enumerate(response.split(), start=1):
            word = strip_punctuation(raw)
            if position % self.N or not word or word.isdigit():
                continue  # not an N-th word, or nothing to judge (punctuation, digits)
            if not _JAPANESE.search(word):
                return False
        return True
