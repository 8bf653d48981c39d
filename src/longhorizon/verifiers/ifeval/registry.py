"""The 25 IFEval instruction ids and what to do with one: build, sample, describe."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from longhorizon.verifiers.ifeval import (
    change_case,
    combination,
    detectable_content,
    detectable_format,
    keywords,
    language,
    length_constraints,
    punctuation,
    startend,
)
from longhorizon.verifiers.ifeval.base import Instruction

_CHECKERS: tuple[type[Instruction], ...] = (
    keywords.KeywordExistence,
    keywords.KeywordFrequency,
    keywords.ForbiddenWords,
    keywords.LetterFrequency,
    language.ResponseLanguage,
    length_constraints.NumberSentences,
    length_constraints.NumberParagraphs,
    length_constraints.NumberWords,
    length_constraints.NthParagraphFirstWord,
    detectable_content.NumberPlaceholders,
    detectable_content.Postscript,
    detectable_format.NumberBulletLists,
    detectable_format.ConstrainedResponse,
    detectable_format.NumberHighlightedSections,
    detectable_format.MultipleSections,
    detectable_format.JsonFormat,
    detectable_format.Title,
    combination.TwoResponses,
    combination.RepeatPrompt,
    startend.EndChecker,
    startend.Quotation,
    change_case.CapitalWordFrequency,
    change_case.EnglishCapital,
    change_case.EnglishLowercase,
    punctuation.NoComma,
)

INSTRUCTIONS: dict[str, type[Instruction]] = {cls.instruction_id: cls for cls in _CHECKERS}
INSTRUCTION_IDS: tuple[str, ...] = tuple(INSTRUCTIONS)


class UnknownInstructionError(KeyError):
    """An instruction id that is not one of IFEval's 25."""

    def __str__(self) -> str:
        return f"unknown IFEval instruction id {self.args[0]!r}"


def checker_class(instruction_id: str) -> type[Instruction]:
    try:
        return INSTRUCTIONS[instruction_id]
    except KeyError:
        raise UnknownInstructionError(instruction_id) from None


def build_checker(
    instruction_id: str, kwargs: Mapping[str, Any] | None = None, prompt: str = ""
) -> Instruction:
    """The checker for one instruction of a prompt, validated against its kwargs."""
    return checker_class(instruction_id).from_kwargs(kwargs or {}, prompt)


def sample_kwargs(instruction_id: str, rng: random.Random) -> dict[str, Any]:
    """Fresh random kwargs for a new task (combination:repeat_prompt gets none: see it)."""
    return checker_class(instruction_id).sample(rng).kwargs()


def describe(instruction_id: str, kwargs: Mapping[str, Any] | None = None) -> str:
    """One sentence telling a model what the instruction asks for."""
    return build_checker(instruction_id, kwargs).describe()
