"""What a set of IFEval instructions asks of a response, read once from their kwargs.

The expert consults this summary instead of the raw kwargs: it says which structure to
build (paragraphs, sections, bullets, title...), which content to insert (keywords,
placeholders, capital words...), which text to avoid (a :class:`TextFilter`), and which
counts to reach or stay under (words, sentences).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from longhorizon.domains.instruction import constraints as c
from longhorizon.domains.instruction.text import TextFilter

Bound = tuple[str, int]  # (relation, threshold), relation "less than" or "at least"


@dataclass
class Needs:
    """Structure, content and counts one response must have."""

    language: str = "en"
    case: str | None = None  # "upper" or "lower"
    paragraphs: int | None = None  # fixed paragraph count
    divider: bool = False  # paragraphs separated by *** (else by blank lines)
    nth: tuple[int, str] | None = None  # (paragraph number, its first word)
    sections: tuple[str, int] | None = None  # (splitter, count)
    bullets: int = 0
    highlights: int = 0
    placeholders: int = 0
    title: bool = False
    postscript: str | None = None  # marker
    end_phrase: str | None = None
    constrained: bool = False
    quotation: bool = False
    json: bool = False
    two_responses: bool = False
    repeat: str | None = None  # the request to repeat first
    keywords: list[str] = field(default_factory=list)  # each at least once
    keyword_counts: list[tuple[str, int]] = field(default_factory=list)  # at least n times
    capital_words: int = 0  # at least this many all-capital words
    letter: tuple[str, int] | None = None  # (letter, at least n times)
    words: list[Bound] = field(default_factory=list)
    sentences: list[Bound] = field(default_factory=list)
    text_filter: TextFilter = field(default_factory=TextFilter)

    @property
    def has_upper_bound(self) -> bool:
        return any(rel == c.LESS_THAN for rel, _ in self.words + self.sentences)

    @property
    def has_length_bound(self) -> bool:
        return bool(self.words or self.sentences)


def _apply(needs: Needs, iid: str, kw: Mapping[str, Any], avoid: list[str]) -> None:
    """Record one instruction's demands (one branch per instruction id)."""
    if iid == c.LANGUAGE:
        needs.language = str(kw["language"])
    elif iid == c.UPPERCASE:
        needs.case = "upper"
    elif iid == c.LOWERCASE:
        needs.case = "lower"
    elif iid == c.PARAGRAPHS:
        needs.paragraphs, needs.divider = int(kw["num_paragraphs"]), True
    elif iid == c.NTH_PARAGRAPH:
        needs.paragraphs = int(kw["num_paragraphs"])
        needs.nth = (int(kw["nth_paragraph"]), str(kw["first_word"]))
    elif iid == c.SECTIONS:
        needs.sections = (str(kw["section_spliter"]), int(kw["num_sections"]))
    elif iid == c.BULLETS:
        needs.bullets = int(kw["num_bullets"])
    elif iid == c.HIGHLIGHTS:
        needs.highlights = int(kw["num_highlights"])
    elif iid == c.PLACEHOLDERS:
        needs.placeholders = int(kw["num_placeholders"])
    elif iid == c.TITLE:
        needs.title = True
    elif iid == c.POSTSCRIPT:
        needs.postscript = str(kw["postscript_marker"])
    elif iid == c.END_PHRASE:
        needs.end_phrase = str(kw["end_phrase"])
    elif iid == c.CONSTRAINED:
        needs.constrained = True
    elif iid == c.QUOTATION:
        needs.quotation = True
    elif iid == c.JSON_FORMAT:
        needs.json = True
    elif iid == c.TWO_RESPONSES:
        needs.two_responses = True
    elif iid == c.REPEAT_PROMPT:
        needs.repeat = str(kw["prompt_to_repeat"])
    elif iid == c.KEYWORDS_EXIST:
        needs.keywords = [str(k) for k in kw["keywords"]]
        avoid.extend(needs.keywords)
    elif iid == c.KEYWORDS_FREQ:
        # Generated text never contains a counted keyword: the expert inserts it itself.
        avoid.append(str(kw["keyword"]))
        if kw["relation"] == c.AT_LEAST:
            needs.keyword_counts.append((str(kw["keyword"]), int(kw["frequency"])))
    elif iid == c.CAPITAL_WORDS and kw["capital_relation"] == c.AT_LEAST:
        needs.capital_words = int(kw["capital_frequency"])
    elif iid == c.LETTER_FREQ and kw["let_relation"] == c.AT_LEAST:
        needs.letter = (str(kw["letter"]).lower(), int(kw["let_frequency"]))
    elif iid == c.WORDS:
        needs.words.append((str(kw["relation"]), int(kw["num_words"])))
    elif iid == c.SENTENCES:
        needs.sentences.append((str(kw["relation"]), int(kw["num_sentences"])))


def read_needs(ids: Sequence[str], kwargs_list: Sequence[Mapping[str, Any]]) -> Needs:
    needs = Needs()
    avoid: list[str] = []
    forbidden: list[str] = []
    banned: str | None = None
    for iid, kw in zip(ids, kwargs_list, strict=True):
        _apply(needs, iid, kw, avoid)
        if iid == c.FORBIDDEN:
            forbidden.extend(str(w) for w in kw["forbidden_words"])
        if iid == c.LETTER_FREQ and kw["let_relation"] == c.LESS_THAN:
            # A letter that must stay rare is left out of generated text altogether.
            banned = str(kw["letter"]).lower()
    needs.text_filter = TextFilter(tuple(forbidden), tuple(avoid), banned)
    return needs
