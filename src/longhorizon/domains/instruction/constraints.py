"""Multi-constraint prompts: a base request plus 1-4 compatible IFEval instructions.

The request comes from this domain's own seeded pools (a kind of text about a topic);
the instructions are drawn from the IFEval checker registry with ``sample_kwargs`` and
phrased with ``describe``. A draw is kept only when no two instructions conflict: the
conflict tables below list every pair that can never (or, for some kwargs, cannot) be
satisfied together. Pairs that are merely hard are left to the expert: a task is only
accepted once the expert's response passes every strict check (see ``tasks.py``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from longhorizon.domains.instruction.pools import REQUESTS, SUPPORTED_LANGUAGES, TOPICS
from longhorizon.verifiers.ifeval import INSTRUCTION_IDS, describe, sample_kwargs

KEYWORDS_EXIST = "keywords:existence"
KEYWORDS_FREQ = "keywords:frequency"
FORBIDDEN = "keywords:forbidden_words"
LETTER_FREQ = "keywords:letter_frequency"
LANGUAGE = "language:response_language"
SENTENCES = "length_constraints:number_sentences"
PARAGRAPHS = "length_constraints:number_paragraphs"
WORDS = "length_constraints:number_words"
NTH_PARAGRAPH = "length_constraints:nth_paragraph_first_word"
PLACEHOLDERS = "detectable_content:number_placeholders"
POSTSCRIPT = "detectable_content:postscript"
BULLETS = "detectable_format:number_bullet_lists"
CONSTRAINED = "detectable_format:constrained_response"
HIGHLIGHTS = "detectable_format:number_highlighted_sections"
SECTIONS = "detectable_format:multiple_sections"
JSON_FORMAT = "detectable_format:json_format"
TITLE = "detectable_format:title"
TWO_RESPONSES = "combination:two_responses"
REPEAT_PROMPT = "combination:repeat_prompt"
END_PHRASE = "startend:end_checker"
QUOTATION = "startend:quotation"
CAPITAL_WORDS = "change_case:capital_word_frequency"
UPPERCASE = "change_case:english_capital"
LOWERCASE = "change_case:english_lowercase"
NO_COMMA = "punctuation:no_comma"

LESS_THAN = "less than"
AT_LEAST = "at least"
# Loose bounds on words per sentence the expert can write (short to long sentences).
MIN_WORDS_PER_SENTENCE = 5
MAX_WORDS_PER_SENTENCE = 40


def _pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


# Pairs that conflict whatever their kwargs, with the reason.
ALWAYS_CONFLICTS: dict[frozenset[str], str] = {
    _pair(UPPERCASE, LOWERCASE): "all capitals and all lowercase exclude each other",
    _pair(UPPERCASE, LANGUAGE): "English-only case rule vs another language",
    _pair(LOWERCASE, LANGUAGE): "English-only case rule vs another language",
    _pair(UPPERCASE, CONSTRAINED): "the fixed answer sentences are matched case-sensitively",
    _pair(LOWERCASE, CONSTRAINED): "the fixed answer sentences are matched case-sensitively",
    _pair(LANGUAGE, KEYWORDS_EXIST): "English keywords in a response in another language",
    _pair(LANGUAGE, KEYWORDS_FREQ): "English keywords in a response in another language",
    _pair(LANGUAGE, REPEAT_PROMPT): "repeating the English request breaks the language",
    _pair(LANGUAGE, END_PHRASE): "the English end phrase breaks the language",
    _pair(LANGUAGE, CONSTRAINED): "the English answer sentence breaks the language",
    _pair(LANGUAGE, NTH_PARAGRAPH): "an English first word breaks the language",
    _pair(JSON_FORMAT, TITLE): "a title outside JSON breaks the format",
    _pair(JSON_FORMAT, SECTIONS): "sections are markdown structure, not JSON",
    _pair(JSON_FORMAT, PARAGRAPHS): "paragraph dividers are markdown structure, not JSON",
    _pair(JSON_FORMAT, NTH_PARAGRAPH): "blank-line paragraphs are not JSON",
    _pair(JSON_FORMAT, HIGHLIGHTS): "markdown highlights are not JSON",
    _pair(JSON_FORMAT, POSTSCRIPT): "a postscript after the JSON breaks the format",
    _pair(JSON_FORMAT, END_PHRASE): "an end phrase after the JSON breaks the format",
    _pair(JSON_FORMAT, BULLETS): "markdown bullets are not JSON",
    _pair(JSON_FORMAT, TWO_RESPONSES): "two responses and a separator are not one JSON value",
    _pair(JSON_FORMAT, REPEAT_PROMPT): "the request repeated first is not JSON",
    _pair(JSON_FORMAT, QUOTATION): "a quoted response is not a JSON object",
    _pair(TWO_RESPONSES, PARAGRAPHS): "the separator ****** contains the divider ***",
    _pair(TWO_RESPONSES, NTH_PARAGRAPH): "paragraph counts over two responses are ambiguous",
    _pair(TWO_RESPONSES, BULLETS): "an exact bullet count over two responses is ambiguous",
    _pair(PARAGRAPHS, NTH_PARAGRAPH): "*** dividers and blank lines count paragraphs differently",
    _pair(NTH_PARAGRAPH, SECTIONS): "section headers would open the paragraphs",
    _pair(REPEAT_PROMPT, QUOTATION): "the response must start with the request, not a quote",
}

Check = Callable[[Mapping[str, Mapping[str, Any]], str], str | None]


def _occurrences(text: str, needle: str) -> int:
    return len(re.findall(re.escape(needle), text, re.IGNORECASE))


def _has_word(text: str, word: str) -> bool:
    return re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


def _fixed_text_check(text_of: Callable[[Mapping[str, Any], str], str], other: str) -> Check:
    """A check of a text the response must contain verbatim against a content rule."""

    def check(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
        fixed_id = next(key for key in kw if key != other)
        text = text_of(kw[fixed_id], request)
        rule = kw[other]
        if other == NO_COMMA and "," in text:
            return "the fixed text has a comma"
        if other == FORBIDDEN and any(_has_word(text, w) for w in rule["forbidden_words"]):
            return "the fixed text has a forbidden word"
        if (
            other == KEYWORDS_FREQ
            and rule["relation"] == LESS_THAN
            and _occurrences(text, rule["keyword"]) >= rule["frequency"]
        ):
            return "the fixed text already has the keyword too often"
        if (
            other == LETTER_FREQ
            and rule["let_relation"] == LESS_THAN
            and text.lower().count(rule["letter"]) >= rule["let_frequency"]
        ):
            return "the fixed text already has the letter too often"
        return None

    return check


def _request_text(kwargs: Mapping[str, Any], request: str) -> str:
    return str(kwargs.get("prompt_to_repeat") or request)


def _end_text(kwargs: Mapping[str, Any], request: str) -> str:
    return str(kwargs["end_phrase"])


def _case_vs_capital_words(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    relation = kw[CAPITAL_WORDS]["capital_relation"]
    if LOWERCASE in kw and relation == AT_LEAST:
        return "lowercase text has no capital words"
    if UPPERCASE in kw and relation == LESS_THAN:
        return "all-capital text has only capital words"
    return None


def _case_vs_sections(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    splitter = str(kw[SECTIONS]["section_spliter"])
    # The section splitter is matched case-sensitively.
    if LOWERCASE in kw and splitter != splitter.lower():
        return "a capitalised section splitter in lowercase text"
    if UPPERCASE in kw and splitter != splitter.upper():
        return "a mixed-case section splitter in all-capital text"
    return None


def _repeat_vs_nth(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    if kw[NTH_PARAGRAPH]["nth_paragraph"] == 1:
        return "the first paragraph must start with the repeated request"
    return None


def _existence_vs_frequency(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    rule = kw[KEYWORDS_FREQ]
    if rule["relation"] != LESS_THAN:
        return None
    required = sum(_occurrences(word, rule["keyword"]) for word in kw[KEYWORDS_EXIST]["keywords"])
    if required >= rule["frequency"]:
        return "required keywords already exceed the keyword's maximum"
    return None


def _keywords_vs_forbidden(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    forbidden = kw[FORBIDDEN]["forbidden_words"]
    if KEYWORDS_EXIST in kw:
        required = list(kw[KEYWORDS_EXIST]["keywords"])
    elif kw[KEYWORDS_FREQ]["relation"] == AT_LEAST:
        required = [kw[KEYWORDS_FREQ]["keyword"]]
    else:
        required = []
    if any(_has_word(k, w) for k in required for w in forbidden):
        return "a required keyword is forbidden"
    return None


def _words_vs_sentences(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    words, sentences = kw[WORDS], kw[SENTENCES]
    w, s = words["num_words"], sentences["num_sentences"]
    relations = (words["relation"], sentences["relation"])
    if relations == (AT_LEAST, LESS_THAN) and w > MAX_WORDS_PER_SENTENCE * max(s - 1, 1):
        return "too many words for so few sentences"
    if relations == (LESS_THAN, AT_LEAST) and w - 1 < MIN_WORDS_PER_SENTENCE * s:
        return "too many sentences for so few words"
    return None


def _sentences_vs_paragraphs(kw: Mapping[str, Mapping[str, Any]], request: str) -> str | None:
    rule = kw[SENTENCES]
    other = kw.get(PARAGRAPHS) or kw[NTH_PARAGRAPH]
    if rule["relation"] == LESS_THAN and other["num_paragraphs"] >= rule["num_sentences"]:
        return "every paragraph needs at least one sentence"
    return None


CONDITIONAL_CONFLICTS: dict[frozenset[str], Check] = {
    _pair(LOWERCASE, CAPITAL_WORDS): _case_vs_capital_words,
    _pair(UPPERCASE, CAPITAL_WORDS): _case_vs_capital_words,
    _pair(LOWERCASE, SECTIONS): _case_vs_sections,
    _pair(UPPERCASE, SECTIONS): _case_vs_sections,
    _pair(REPEAT_PROMPT, NTH_PARAGRAPH): _repeat_vs_nth,
    _pair(KEYWORDS_EXIST, KEYWORDS_FREQ): _existence_vs_frequency,
    _pair(KEYWORDS_EXIST, FORBIDDEN): _keywords_vs_forbidden,
    _pair(KEYWORDS_FREQ, FORBIDDEN): _keywords_vs_forbidden,
    _pair(WORDS, SENTENCES): _words_vs_sentences,
    _pair(SENTENCES, PARAGRAPHS): _sentences_vs_paragraphs,
    _pair(SENTENCES, NTH_PARAGRAPH): _sentences_vs_paragraphs,
    **{
        _pair(fixed, other): _fixed_text_check(text_of, other)
        for fixed, text_of in ((REPEAT_PROMPT, _request_text), (END_PHRASE, _end_text))
        for other in (NO_COMMA, FORBIDDEN, KEYWORDS_FREQ, LETTER_FREQ)
    },
}


@dataclass(frozen=True)
class Constraint:
    """One IFEval instruction with its kwargs."""

    instruction_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return describe(self.instruction_id, self.kwargs)


@dataclass(frozen=True)
class ComposedPrompt:
    """A base request and the instructions added to it."""

    topic: str
    kind: str
    request: str
    constraints: tuple[Constraint, ...]

    @property
    def prompt(self) -> str:
        """The request, a blank line, then one sentence per instruction."""
        return self.request + "\n\n" + " ".join(c.describe() for c in self.constraints)

    @property
    def instruction_id_list(self) -> list[str]:
        return [c.instruction_id for c in self.constraints]

    @property
    def kwargs_list(self) -> list[dict[str, Any]]:
        return [dict(c.kwargs) for c in self.constraints]

    @property
    def language(self) -> str:
        """The response language: English unless a language instruction says otherwise."""
        for c in self.constraints:
            if c.instruction_id == LANGUAGE:
                return str(c.kwargs["language"])
        return "en"


def conflict(a: Constraint, b: Constraint, request: str) -> str | None:
    """Why two instructions cannot both be followed, or None when they can."""
    key = _pair(a.instruction_id, b.instruction_id)
    if a.instruction_id == b.instruction_id:
        return "the same instruction twice"
    if key in ALWAYS_CONFLICTS:
        return ALWAYS_CONFLICTS[key]
    check = CONDITIONAL_CONFLICTS.get(key)
    if check is None:
        return None
    return check({a.instruction_id: a.kwargs, b.instruction_id: b.kwargs}, request)


def find_conflict(constraints: tuple[Constraint, ...], request: str) -> str | None:
    for a, b in combinations(constraints, 2):
        reason = conflict(a, b, request)
        if reason is not None:
            return f"{a.instruction_id} vs {b.instruction_id}: {reason}"
    return None


def draw_request(rng: random.Random) -> tuple[str, str, str]:
    """(topic, kind, request) from the seeded pools."""
    topic = rng.choice(TOPICS)
    kind, template = rng.choice(REQUESTS)
    return topic, kind, template.format(topic=topic)


def draw_constraint(instruction_id: str, rng: random.Random, request: str) -> Constraint | None:
    """Fresh kwargs for one instruction; None for a language the expert cannot write."""
    if instruction_id == REPEAT_PROMPT:
        # The checker needs the bare request: the prompt also carries the instructions.
        return Constraint(instruction_id, {"prompt_to_repeat": request})
    if instruction_id == LANGUAGE:
        for _ in range(50):
            kwargs = sample_kwargs(instruction_id, rng)
            if kwargs["language"] in SUPPORTED_LANGUAGES:
                return Constraint(instruction_id, kwargs)
        return None
    return Constraint(instruction_id, sample_kwargs(instruction_id, rng))


def compose(
    rng: random.Random, min_instructions: int = 1, max_instructions: int = 4, max_tries: int = 200
) -> ComposedPrompt:
    """A request with 1-4 mutually compatible instructions; conflicting draws are redrawn."""
    topic, kind, request = draw_request(rng)
    count = rng.randint(min_instructions, max_instructions)
    for _ in range(max_tries):
        ids = rng.sample(INSTRUCTION_IDS, count)
        drawn = [draw_constraint(i, rng, request) for i in ids]
        constraints = tuple(c for c in drawn if c is not None)
        if len(constraints) == count and find_conflict(constraints, request) is None:
            return ComposedPrompt(topic, kind, request, constraints)
    raise RuntimeError(f"no compatible draw of {count} instructions in {max_tries} tries")
