"""IFEval: the 541 prompts, answered by the model, written as an official response file, scored.

Each prompt is one user message rendered with the model's chat template; generation is
batched (greedy for seed 0) with at most `max_tokens` tokens (1024 by default). Responses go
to `responses-seed<k>.jsonl` in the official format (one {"prompt", "response"} per line),
and that file is what the existing scorer (`verifiers.ifeval.scorer`) reads.

Metrics, each with a bootstrap interval over prompts (instruction-level resamples whole
prompts): prompt- and instruction-level accuracy, strict and loose, and their averages. The
headline is `average_strict` = (prompt-level strict + instruction-level strict) / 2: the
SmolLM2 model cards' "IFEval (Average prompt/inst)" does not name the variant; strict is
the common convention (the Open LLM Leaderboard reports exactly this mean of the two strict
accuracies), and `average_loose` is reported beside it for the other reading.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import benchmark_file
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import Score, single_turn
from longhorizon.evaluation.types import ItemResult
from longhorizon.verifiers.ifeval.scorer import (
    IFEvalInput,
    load_inputs,
    load_responses,
    score_inputs,
)

NAME = "ifeval"


def metric_all(key: str) -> Ratio:
    """Per prompt: 1 when every instruction's verdict under `key` is True."""
    return Ratio(numerator=lambda r: float(all(r.details[key])))


def metric_each(key: str) -> Ratio:
    """Per instruction: verdicts under `key` followed, over the prompt's instructions."""
    return Ratio(
        numerator=lambda r: float(sum(r.details[key])),
        denominator=lambda r: float(len(r.details[key])),
    )


METRICS = (
    Metric(
        "average_strict",
        ((0.5, metric_all("strict")), (0.5, metric_each("strict"))),
        "(prompt-level strict + instruction-level strict) / 2",
    ),
    Metric("prompt_level_strict", ((1.0, metric_all("strict")),), "prompts with every instruction"),
    Metric("instruction_level_strict", ((1.0, metric_each("strict")),), "instructions followed"),
    Metric("prompt_level_loose", ((1.0, metric_all("loose")),), "as strict, on loose variants"),
    Metric(
        "instruction_level_loose", ((1.0, metric_each("loose")),), "as strict, on loose variants"
    ),
    Metric(
        "average_loose",
        ((0.5, metric_all("loose")), (0.5, metric_each("loose"))),
        "(prompt-level loose + instruction-level loose) / 2",
    ),
)


def inputs_path(options: EvalOptions) -> Path:
    """--data-dir's ifeval inputs, else the benchmark setting's (raises naming what to set)."""
    if options.data_dir is not None:
        return options.data_dir / "ifeval" / "input_data.jsonl"
    return benchmark_file("ifeval", "input_data.jsonl")


def responses_path(bench_dir: Path, seed: int) -> Path:
    return bench_dir / f"responses-seed{seed}.jsonl"


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    path = inputs_path(options)
    return Loaded(limited(load_inputs(path), options.limit), {"inputs": str(path)})


def item_id(item: IFEvalInput) -> str:
    return str(item.key)


def append_responses(path: Path, rows: list[tuple[str, str]]) -> None:
    """Append (prompt, response) rows in the official format; a later row for a prompt wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for prompt, response in rows:
            f.write(json.dumps({"prompt": prompt, "response": response}) + "\n")


def score_batch(
    items: list[IFEvalInput], responses_file: Path, seed: int, meta: list[dict[str, Any]]
) -> list[ItemResult]:
    """Score `items` from the responses file with the existing IFEval scorer."""
    responses = load_responses(responses_file)
    report = score_inputs(items, responses)
    return [
        ItemResult(
            bench=NAME,
            item_id=str(result.key),
            seed=seed,
            score=float(result.follow_all_instructions_strict),
            prediction=responses[result.prompt],
            details={
                "instruction_id_list": result.instruction_id_list,
                "strict": result.follow_instruction_list_strict,
                "loose": result.follow_instruction_list_loose,
                **extra,
            },
        )
        for result, extra in zip(report.results, meta, strict=True)
    ]


BatchScorer = Callable[[list[Any], Path, int, list[dict[str, Any]]], list[ItemResult]]


def response_file_scorer(score_file: BatchScorer) -> Callable[[int, Path], Score]:
    """A single-turn scorer that appends each batch to the seed's response file, then scores
    the batch from that file with `score_file` (the official scorers read responses from it;
    IFBench shares the file format)."""

    def scorer(seed: int, bench_dir: Path) -> Score:
        responses_file = responses_path(bench_dir, seed)

        def score(
            batch: list[Any], texts: list[str], meta: list[dict[str, Any]]
        ) -> list[ItemResult]:
            rows = [(i.prompt, t) for i, t in zip(batch, texts, strict=True)]
            append_responses(responses_file, rows)
            return score_file(batch, responses_file, seed, meta)

        return score

    return scorer


scorer = response_file_scorer(score_batch)
run = single_turn(NAME, scorer)


BENCH = Bench(
    name=NAME,
    metrics=METRICS,
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="IFEval (541 prompts), official response file, 25 checkers",
)
