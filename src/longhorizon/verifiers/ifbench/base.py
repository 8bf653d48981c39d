"""The base class of the IFBench checkers, and the text helpers most of them share.

A checker is a frozen pydantic model whose fields are the instruction's kwargs as IFBench's
test file names them; it inherits IFEval's :class:`Instruction`, so both benchmarks build,
validate and describe checkers the same way. IFBench writes integer kwargs as floats
(``"N": 10.0``); :data:`Count` accepts them as ints.
"""

from __future__ import annotations

import string
from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator

from longhorizon.verifiers.ifeval.base import Instruction

# ASCII punctuation, as Python's `string.punctuation` lists it: the set IFBench strips.
PUNCTUATION = string.punctuation
_NO_PUNCTUATION = str.maketrans("", "", PUNCTUATION)


def _whole_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_whole_number)]


class Checker(Instruction):
    """An IFBench instruction; `template` is its wording, formatted with the kwargs."""

    template: ClassVar[str]

    def describe(self) -> str:
        return self.template.format(**self.kwargs())


def drop_punctuation(text: str) -> str:
    """`text` without any ASCII punctuation character."""
    return text.translate(_NO_PUNCTUATION)


def strip_punctuation(word: str) -> str:
    """`word` without leading or trailing ASCII punctuation and spaces."""
    return word.strip(PUNCTUATION + " ")
