"""Strict and loose IFEval verdicts for one prompt and its response.

Strict: the checker runs on the response as it is. Loose (IFEval paper, section 3): the
checker runs on eight variants of the response, namely the response itself and with
the first line removed, the last line removed, or both, each with and without every
``*`` (markdown emphasis) removed; the instruction is followed loosely when any variant
passes. In both modes an empty or whitespace-only text never passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from longhorizon.verifiers.ifeval.base import Instruction
from longhorizon.verifiers.ifeval.registry import build_checker


def loose_variants(response: str) -> list[str]:
    """The eight response variants of IFEval's loose evaluation, the response first."""
    lines = response.split("\n")
    # Variants with lines removed are stripped; the full response is kept as it is.
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    trimmed = [response, without_first, without_last, without_both]
    return trimmed + [text.replace("*", "") for text in trimmed]


def follows_strict(checker: Instruction, response: str) -> bool:
    return bool(response.strip()) and checker.check(response)


def follows_loose(checker: Instruction, response: str) -> bool:
    return any(follows_strict(checker, variant) for variant in loose_variants(response))


@dataclass(frozen=True)
class PromptResult:
    """Per-instruction verdicts for one prompt, strict and loose."""

    key: int
    prompt: str
    instruction_id_list: list[str]
    follow_instruction_list_strict: list[bool]
    follow_instruction_list_loose: list[bool]

    @property
    def follow_all_instructions_strict(self) -> bool:
        return all(self.follow_instruction_list_strict)

    @property
    def follow_all_instructions_loose(self) -> bool:
        return all(self.follow_instruction_list_loose)


def evaluate_prompt(
    key: int,
    prompt: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any]],
    response: str,
) -> PromptResult:
    """Check every instruction of a prompt against the response, strictly and loosely."""
    if len(instruction_ids) != len(kwargs_list):
        raise ValueError(f"prompt {key}: {len(instruction_ids)} ids but {len(kwargs_list)} kwargs")
    checkers = [
        build_checker(instruction_id, kwargs, prompt)
        for instruction_id, kwargs in zip(instruction_ids, kwargs_list, strict=True)
    ]
    return PromptResult(
        key=key,
        prompt=prompt,
        instruction_id_list=list(instruction_ids),
        follow_instruction_list_strict=[follows_strict(c, response) for c in checkers],
        follow_instruction_list_loose=[follows_loose(c, response) for c in checkers],
    )
