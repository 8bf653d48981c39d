"""The base class every IFEval instruction checker derives from.

A checker is a frozen pydantic model whose fields are the instruction's kwargs, exactly
as they are named in IFEval's ``input_data.jsonl``. It can check a response, describe
itself in one sentence, and sample fresh kwargs for task synthesis.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict


class Relation(StrEnum):
    """How a count is compared with its threshold."""

    LESS_THAN = "less than"
    AT_LEAST = "at least"


def compare(count: int, relation: Relation, threshold: int) -> bool:
    """``count < threshold`` for "less than", ``count >= threshold`` for "at least"."""
    if relation is Relation.LESS_THAN:
        return count < threshold
    return count >= threshold


def relation_phrase(relation: Relation, threshold: int, noun: str) -> str:
    """E.g. "fewer than 5 sentences" or "at least 5 sentences"."""
    if relation is Relation.LESS_THAN:
        return f"fewer than {threshold} {noun}"
    return f"at least {threshold} {noun}"


def sample_relation(rng: random.Random) -> Relation:
    return rng.choice(list(Relation))


class Instruction(BaseModel):
    """One verifiable instruction with its kwargs as fields."""

    # Unknown kwargs are an error, so a typo in a kwarg name cannot silently change a verdict.
    model_config = ConfigDict(frozen=True, extra="forbid")

    instruction_id: ClassVar[str]

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], prompt: str) -> Self:
        """Build from IFEval kwargs; checkers that need the prompt override this."""
        del prompt  # only combination:repeat_prompt uses it
        return cls.model_validate(dict(kwargs))

    @classmethod
    def sample(cls, rng: random.Random) -> Self:
        """Checkers without kwargs have nothing to sample."""
        del rng
        return cls()

    def check(self, response: str) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def kwargs(self) -> dict[str, Any]:
        """The kwargs as IFEval writes them (plain JSON values)."""
        return self.model_dump(mode="json", exclude_none=True)
