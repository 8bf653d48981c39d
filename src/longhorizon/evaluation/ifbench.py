"""IFBench: its test prompts (300 in the current set), answered by the model, scored by our
58 checkers.

Generation, the response file and its format are IFEval's (`evaluation.ifeval`): one user
message per prompt, batched, greedy for seed 0, responses appended to
`responses-seed<k>.jsonl` as {"prompt", "response"} lines. Scoring reads that file with
`verifiers.ifbench`. The headline is prompt-level loose accuracy, as in the IFBench paper;
prompt- and instruction-level strict and loose accuracies are reported beside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import benchmark_file
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.ifeval import (
    item_id,
    metric_all,
    metric_each,
    response_file_scorer,
)
from longhorizon.evaluation.metrics import Metric
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import single_turn
from longhorizon.evaluation.types import ItemResult
from longhorizon.verifiers.ifbench.scorer import (
    IFEvalInput,
    load_inputs,
    load_responses,
    score_inputs,
)

NAME = "ifbench"
TEST_FILE = "IFBench_test.jsonl"

METRICS = (
    Metric("prompt_level_loose", ((1.0, metric_all("loose")),), "prompts with every instruction"),
    Metric("prompt_level_strict", ((1.0, metric_all("strict")),), "as loose, on the response"),
    Metric("instruction_level_loose", ((1.0, metric_each("loose")),), "instructions followed"),
    Metric("instruction_level_strict", ((1.0, metric_each("strict")),), "instructions followed"),
)


def inputs_path(options: EvalOptions) -> Path:
    """--data-dir's ifbench test file, else the benchmark setting's."""
    if options.data_dir is not None:
        return options.data_dir / NAME / TEST_FILE
    return benchmark_file(NAME, TEST_FILE)


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    path = inputs_path(options)
    return Loaded(limited(load_inputs(path), options.limit), {"inputs": str(path)})


def score_batch(
    items: list[IFEvalInput], responses_file: Path, seed: int, meta: list[dict[str, Any]]
) -> list[ItemResult]:
    """Score `items` from the responses file; the item score is prompt-level loose."""
    responses = load_responses(responses_file)
    report = score_inputs(items, responses)
    return [
        ItemResult(
            bench=NAME,
            item_id=str(result.key),
            seed=seed,
            score=float(result.follow_all_instructions_loose),
            prediction=responses[result.prompt.strip()],
            details={
                "instruction_id_list": result.instruction_id_list,
                "strict": result.follow_instruction_list_strict,
                "loose": result.follow_instruction_list_loose,
                **extra,
            },
        )
        for result, extra in zip(report.results, meta, strict=True)
    ]


scorer = response_file_scorer(score_batch)
run = single_turn(NAME, scorer)

BENCH = Bench(
    name=NAME,
    metrics=METRICS,
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="IFBench (300 prompts), 58 out-of-distribution checkers, headline loose",
)
