"""The 58 IFBench instruction ids and their checkers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from longhorizon.verifiers.ifbench import (
    count,
    custom,
    custom_csv,
    format_layout,
    format_marks,
    ratio,
    repeat,
    sentence,
    words_letters,
    words_order,
)
from longhorizon.verifiers.ifbench.base import Checker

_CHECKERS: tuple[type[Checker], ...] = (
    count.WordCountRange,
    count.UniqueWordCount,
    count.Conjunctions,
    count.PersonNames,
    count.Numbers,
    count.Punctuation,
    count.KeywordsMultiple,
    count.Pronouns,
    count.WordsJapanese,
    ratio.StopWords,
    ratio.SentenceType,
    ratio.SentenceBalance,
    ratio.Overlap,
    ratio.SentenceWords,
    words_letters.Alphabet,
    words_letters.Vowel,
    words_letters.Consonants,
    words_letters.Palindrome,
    words_letters.PrimeLengths,
    words_letters.NoConsecutive,
    words_letters.Repeats,
    words_letters.OddEvenSyllables,
    words_order.StartVerb,
    words_order.LastFirst,
    words_order.ParagraphLastFirst,
    words_order.KeywordsSpecificPosition,
    words_order.WordsPosition,
    sentence.AlliterationIncrement,
    sentence.Increment,
    sentence.Keyword,
    format_marks.Parentheses,
    format_marks.Quotes,
    format_marks.Emoji,
    format_marks.QuoteUnquote,
    format_marks.Thesis,
    format_marks.TitleCase,
    format_marks.NoWhitespace,
    format_layout.Options,
    format_layout.Newline,
    format_layout.LineIndent,
    format_layout.List,
    format_layout.SubBullets,
    format_layout.NoBulletsBullets,
    format_layout.OutputTemplate,
    repeat.RepeatChange,
    repeat.RepeatSimple,
    repeat.RepeatSpan,
    custom.Multiples,
    custom.McqCountLength,
    custom.ReverseNewline,
    custom.WordReverse,
    custom.CharacterReverse,
    custom.SentenceAlphabet,
    custom.EuropeanCapitalsSort,
    custom.DateFormatList,
    custom_csv.CsvCity,
    custom_csv.CsvSpecialCharacter,
    custom_csv.CsvQuotes,
)

INSTRUCTIONS: dict[str, type[Checker]] = {cls.instruction_id: cls for cls in _CHECKERS}
INSTRUCTION_IDS: tuple[str, ...] = tuple(INSTRUCTIONS)

# Verdicts that depend on a statistical model in the reference scorer (NLTK's POS tagger);
# ours approximates it, so these are compared with the reference separately.
MODEL_BASED: frozenset[str] = frozenset({"words:start_verb"})


class UnknownInstructionError(KeyError):
    """An instruction id that is not one of IFBench's 58."""

    def __str__(self) -> str:
        return f"unknown IFBench instruction id {self.args[0]!r}"


def build_checker(instruction_id: str, kwargs: Mapping[str, Any] | None = None) -> Checker:
    """The checker for one instruction of a prompt, validated against its kwargs."""
    try:
        cls = INSTRUCTIONS[instruction_id]
    except KeyError:
        raise UnknownInstructionError(instruction_id) from None
    return cls.from_kwargs(kwargs or {}, "")


def describe(instruction_id: str, kwargs: Mapping[str, Any] | None = None) -> str:
    return build_checker(instruction_id, kwargs).describe()
