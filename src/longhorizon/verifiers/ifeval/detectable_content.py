"""IFEval ``detectable_content:*`` checkers: bracketed placeholders and a postscript."""

from __future__ import annotations

import random
import re
from typing import ClassVar, Self

from pydantic import Field

from longhorizon.verifiers.ifeval.base import Instruction
from longhorizon.verifiers.ifeval.vocab import POSTSCRIPT_MARKERS

_PLACEHOLDER = re.compile(r"\[.*?\]")


class NumberPlaceholders(Instruction):
    """At least ``num_placeholders`` square-bracket placeholders such as ``[name]``."""

    instruction_id: ClassVar[str] = "detectable_content:number_placeholders"
    num_placeholders: int = Field(ge=1)

    def check(self, response: str) -> bool:
        return len(_PLACEHOLDER.findall(response)) >= self.num_placeholders

    def describe(self) -> str:
        return (
            f"Include at least {self.num_placeholders} placeholders in square brackets, "
            "such as [address]."
        )

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(num_placeholders=rng.randint(1, 6))


def _postscript_pattern(marker: str) -> str:
    """A lower-case regex for the marker; the two usual markers tolerate a space after dots."""
    if marker == "P.P.S":
        return r"\s*p\.\s?p\.\s?s.*$"
    if marker == "P.S.":
        return r"\s*p\.\s?s\..*$"
    # Other markers are used as regexes, as IFEval does.
    return r"\s*" + marker.lower() + r".*$"


class Postscript(Instruction):
    """The response contains a postscript that starts with ``postscript_marker``."""

    instruction_id: ClassVar[str] = "detectable_content:postscript"
    postscript_marker: str = Field(min_length=1)

    def check(self, response: str) -> bool:
        # Not anchored to a line start: the marker anywhere in the text counts.
        pattern = _postscript_pattern(self.postscript_marker)
        return re.search(pattern, response.lower(), flags=re.MULTILINE) is not None

    def describe(self) -> str:
        marker = self.postscript_marker
        stop = "" if marker.endswith(".") else "."
        return f"Close with a postscript: a final note that opens with {marker}{stop}"

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        return cls(postscript_marker=rng.choice(POSTSCRIPT_MARKERS))
