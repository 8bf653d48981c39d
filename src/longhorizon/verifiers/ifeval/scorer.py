"""Score a file of responses against IFEval's ``input_data.jsonl``.

Responses are matched to prompts by the prompt text, which is how IFEval's response files
are keyed. The report carries per-prompt verdicts and the four IFEval accuracies:
prompt-level (every instruction of a prompt followed) and instruction-level, each strict
and loose.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.verifiers.ifeval.evaluation import PromptResult, evaluate_prompt


@dataclass(frozen=True)
class IFEvalInput:
    """One IFEval prompt with its instructions."""

    key: int
    prompt: str
    instruction_id_list: list[str]
    kwargs: list[dict[str, Any]]


@dataclass(frozen=True)
class Accuracy:
    correct: int
    total: int

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.value:.4f} ({self.correct}/{self.total})"


@dataclass(frozen=True)
class IFEvalReport:
    results: list[PromptResult]

    @property
    def prompt_level_strict(self) -> Accuracy:
        return _accuracy([r.follow_all_instructions_strict for r in self.results])

    @property
    def prompt_level_loose(self) -> Accuracy:
        return _accuracy([r.follow_all_instructions_loose for r in self.results])

    @property
    def instruction_level_strict(self) -> Accuracy:
        return _accuracy([v for r in self.results for v in r.follow_instruction_list_strict])

    @property
    def instruction_level_loose(self) -> Accuracy:
        return _accuracy([v for r in self.results for v in r.follow_instruction_list_loose])

    def summary(self) -> dict[str, Accuracy]:
        return {
            "prompt_level_strict": self.prompt_level_strict,
            "instruction_level_strict": self.instruction_level_strict,
            "prompt_level_loose": self.prompt_level_loose,
            "instruction_level_loose": self.instruction_level_loose,
        }


def _accuracy(verdicts: list[bool]) -> Accuracy:
    return Accuracy(correct=sum(verdicts), total=len(verdicts))


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_inputs(path: str | Path) -> list[IFEvalInput]:
    return [
        IFEvalInput(
            key=int(row["key"]),
            prompt=row["prompt"],
            instruction_id_list=list(row["instruction_id_list"]),
            # IFEval writes unset kwargs as null; they mean "not given".
            kwargs=[{k: v for k, v in kw.items() if v is not None} for kw in row["kwargs"]],
        )
        for row in _read_jsonl(Path(path))
    ]


def load_responses(path: str | Path) -> dict[str, str]:
    """Prompt text -> response; a later line for the same prompt replaces an earlier one."""
    return {row["prompt"]: row["response"] for row in _read_jsonl(Path(path))}


def score_inputs(inputs: list[IFEvalInput], responses: dict[str, str]) -> IFEvalReport:
    missing = [item.key for item in inputs if item.prompt not in responses]
    if missing:
        raise KeyError(f"no response for {len(missing)} IFEval prompts, keys {missing[:10]}")
    results = [
        evaluate_prompt(
            item.key,
            item.prompt,
            item.instruction_id_list,
            item.kwargs,
            responses[item.prompt],
        )
        for item in inputs
    ]
    return IFEvalReport(results=results)


def score_responses(inputs_path: str | Path, responses_path: str | Path) -> IFEvalReport:
    """Score a responses JSONL (prompt, response) against an IFEval inputs JSONL."""
    return score_inputs(load_inputs(inputs_path), load_responses(responses_path))


def write_items_jsonl(report: IFEvalReport, path: str | Path) -> None:
    """One line per prompt: key, instruction ids and the strict and loose verdicts."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for result in report.results:
            item = {
                "key": result.key,
                "instruction_id_list": result.instruction_id_list,
                "follow_instruction_list_strict": result.follow_instruction_list_strict,
                "follow_instruction_list_loose": result.follow_instruction_list_loose,
            }
            handle.write(json.dumps(item) + "\n")
