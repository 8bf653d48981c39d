"""Score a responses file against IFBench's test file, strictly and loosely.

IFBench's loose mode is IFEval's: a checker passes loosely when it passes on any of the
eight response variants (`longhorizon.verifiers.ifeval.loose_variants`). Responses are
matched to prompts by prompt text with leading and trailing whitespace ignored (IFBench's
prompts often end in a space that response files drop). The report is IFEval's: per-prompt
verdicts and prompt- and instruction-level accuracy, strict and loose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from longhorizon.verifiers.ifbench.registry import build_checker
from longhorizon.verifiers.ifeval.evaluation import PromptResult, follows_loose, follows_strict
from longhorizon.verifiers.ifeval.scorer import IFEvalInput, IFEvalReport, load_inputs

__all__ = [
    "IFEvalInput",
    "evaluate_prompt",
    "load_inputs",
    "load_responses",
    "score_inputs",
    "score_responses",
]


def evaluate_prompt(
    key: int,
    prompt: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any]],
    response: str,
) -> PromptResult:
    """Check every IFBench instruction of a prompt against the response."""
    if len(instruction_ids) != len(kwargs_list):
        raise ValueError(f"prompt {key}: {len(instruction_ids)} ids but {len(kwargs_list)} kwargs")
    checkers = [build_checker(i, kw) for i, kw in zip(instruction_ids, kwargs_list, strict=True)]
    return PromptResult(
        key=key,
        prompt=prompt,
        instruction_id_list=list(instruction_ids),
        follow_instruction_list_strict=[follows_strict(c, response) for c in checkers],
        follow_instruction_list_loose=[follows_loose(c, response) for c in checkers],
    )


def load_responses(path: str | Path) -> dict[str, str]:
    """Stripped prompt text -> response; a later line for the same prompt wins."""
    responses = {}
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                responses[row["prompt"].strip()] = row["response"]
    return responses


def score_inputs(inputs: list[IFEvalInput], responses: Mapping[str, str]) -> IFEvalReport:
    """Score every input; `responses` is keyed by prompt text (stripped here)."""
    by_prompt = {prompt.strip(): text for prompt, text in responses.items()}
    missing = [item.key for item in inputs if item.prompt.strip() not in by_prompt]
    if missing:
        raise KeyError(f"no response for {len(missing)} IFBench prompts, keys {missing[:10]}")
    return IFEvalReport(
        results=[
            evaluate_prompt(
                item.key,
                item.prompt,
                item.instruction_id_list,
                item.kwargs,
                by_prompt[item.prompt.strip()],
            )
            for item in inputs
        ]
    )


def score_responses(inputs_path: str | Path, responses_path: str | Path) -> IFEvalReport:
    """Score a responses JSONL (prompt, response) against an IFBench test JSONL."""
    return score_inputs(load_inputs(inputs_path), load_responses(responses_path))
