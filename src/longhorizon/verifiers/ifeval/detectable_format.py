"""IFEval ``detectable_format:*`` checkers: bullets, fixed answers, highlights, sections,
JSON and a title in double angular brackets."""

from __future__ import annotations

import json
import random
import re
from typing import ClassVar, Self

from pydantic import Field

from longhorizon.verifiers.ifeval.base import Instruction
from longhorizon.verifiers.ifeval.vocab import SECTION_SPLITTERS

# A star bullet is "*" followed by anything but another "*" (which would be bold text).
_STAR_BULLET = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_DASH_BULLET = re.compile(r"^\s*-.*$", re.MULTILINE)
_SINGLE_HIGHLIGHT = re.compile(r"\*[^\n\*]*\*")
_DOUBLE_HIGHLIGHT = re.compile(r"\*\*[^\n\*]*\*\*")
_TITLE = re.compile(r"<<[^\n]+>>")

CONSTRAINED_OPTIONS: tuple[str, ...] = (
    "My answer is yes.",
    "My answer is no.",
    "My answer is maybe.",
)


class NumberBulletLists(Instruction):
    """Exactly ``num_bullets`` markdown bullet lines (``* item`` or ``- item``)."""

    instruction_id: ClassVar[str] = "detectable_format:number_bullet_lists"
    num_bullets: int = Field(ge=1)

    def check(self, response: str) -> bool:
        bullets = len(_STAR_BULLET.findall(response)) + len(_DASH_BULLET.findall(response))
        return bullets == self.num_bullets

    def describe(self) -> str:
        return (
            f"Include exactly {self.num_bullets} markdown bullet items; start each item's line "
            "with an asterisk and a space."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_bullets=rng.randint(2, 7))


class ConstrainedResponse(Instruction):
    """The response contains one of the fixed yes/no/maybe answer sentences."""

    instruction_id: ClassVar[str] = "detectable_format:constrained_response"

    def check(self, response: str) -> bool:
        response = response.strip()
        return any(option in response for option in CONSTRAINED_OPTIONS)

    def describe(self) -> str:
        options = ", ".join(f'"{option}"' for option in CONSTRAINED_OPTIONS)
        return f"Reply with exactly one of these three sentences and nothing else: {options}"


def _has_text(highlight: str, marker: str) -> bool:
    return bool(highlight.removeprefix(marker).removesuffix(marker).strip())


class NumberHighlightedSections(Instruction):
    """At least ``num_highlights`` non-empty ``*highlighted*`` spans on single lines.

    Single- and double-star spans are counted separately and added, so a ``**bold**``
    span can count more than once, as in IFEval.
    """

    instruction_id: ClassVar[str] = "detectable_format:number_highlighted_sections"
    num_highlights: int = Field(ge=1)

    def check(self, response: str) -> bool:
        singles = sum(1 for span in _SINGLE_HIGHLIGHT.findall(response) if span.strip("*").strip())
        doubles = sum(1 for span in _DOUBLE_HIGHLIGHT.findall(response) if _has_text(span, "**"))
        return singles + doubles >= self.num_highlights

    def describe(self) -> str:
        return (
            f"Emphasise {self.num_highlights} or more passages by enclosing each in single "
            "asterisks, like *this passage*."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_highlights=rng.randint(1, 5))


class MultipleSections(Instruction):
    """At least ``num_sections`` sections, each introduced by ``<section_spliter> <number>``."""

    instruction_id: ClassVar[str] = "detectable_format:multiple_sections"
    # The kwarg name is spelled this way in IFEval's data.
    section_spliter: str = Field(min_length=1)
    num_sections: int = Field(ge=1)

    def check(self, response: str) -> bool:
        # The splitter is used as a regex, as in IFEval (the data's splitters are plain words).
        pattern = r"\s?" + self.section_spliter + r"\s?\d+\s?"
        return len(re.split(pattern, response)) - 1 >= self.num_sections

    def describe(self) -> str:
        return (
            f"Your response must have {self.num_sections} sections; mark the beginning of "
            f"each with {self.section_spliter} X, where X is the section number."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(section_spliter=rng.choice(SECTION_SPLITTERS), num_sections=rng.randint(2, 5))


def _unfence(response: str) -> str:
    """Drop an optional markdown code fence (``` or ```json) around the response."""
    text = response.strip()
    for fence in ("```json", "```Json", "```JSON", "```"):
        text = text.removeprefix(fence)
    return text.removesuffix("```").strip()


class JsonFormat(Instruction):
    """The whole response (optionally in a code fence) parses as JSON."""

    instruction_id: ClassVar[str] = "detectable_format:json_format"

    def check(self, response: str) -> bool:
        try:
            json.loads(_unfence(response))
        except ValueError:
            return False
        return True

    def describe(self) -> str:
        return "Wrap your entire output in JSON format; markdown code fences are allowed."


class Title(Instruction):
    """A non-empty title in double angular brackets, such as ``<<poem of joy>>``."""

    instruction_id: ClassVar[str] = "detectable_format:title"

    def check(self, response: str) -> bool:
        return any(title.lstrip("<").rstrip(">").strip() for title in _TITLE.findall(response))

    def describe(self) -> str:
        return (
            "Give the piece a title and enclose it in double angle brackets, "
            "for example <<a morning walk>>."
        )
