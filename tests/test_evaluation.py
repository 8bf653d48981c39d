"""Evaluation: bootstrap error bars, paired comparisons, and the IFEval responses scorer CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.evaluation import bootstrap_mean, paired_difference


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_n() -> None:
    small = bootstrap_mean([0, 1] * 10)
    large = bootstrap_mean([0, 1] * 500)
    assert small.mean == large.mean == 0.5
    assert small.low < 0.5 < small.high
    assert large.half_width < small.half_width / 5
    assert bootstrap_mean([1, 1, 1]).low == 1.0  # no spread, no interval
    assert bootstrap_mean([0, 1, 1, 0], seed=3) == bootstrap_mean([0, 1, 1, 0], seed=3)


def test_paired_difference_uses_item_pairs() -> None:
    a = [1, 1, 1, 0, 1, 1, 1, 1, 0, 1] * 10
    b = [0, 1, 1, 0, 0, 1, 1, 1, 0, 0] * 10
    diff = paired_difference(a, b)
    assert diff.mean == pytest.approx(0.3)
    assert diff.low > 0  # the same items: a is better beyond doubt
    with pytest.raises(ValueError, match="same items: 2 vs 3"):
        paired_difference([1, 0], [1, 0, 1])


def test_unscored_items_enter_no_estimate_pool_or_pair() -> None:
    from longhorizon.evaluation.metrics import (
        ACCURACY,
        estimate,
        paired_metric_difference,
        pooled_estimate,
    )
    from longhorizon.evaluation.types import ItemResult

    def item(i: str, seed: int, score: float, unscored: str | None = None) -> ItemResult:
        return ItemResult(bench="b", item_id=i, seed=seed, score=score, unscored=unscored)

    seed0 = [item("x", 0, 1.0), item("y", 0, 0.0, "judge failed"), item("z", 0, 0.0)]
    assert (estimate(ACCURACY, seed0).mean, estimate(ACCURACY, seed0).n) == (0.5, 2)
    seed1 = [item("x", 1, 1.0), item("y", 1, 1.0), item("z", 1, 0.0, "no judge")]
    a = {0: {r.item_id: r for r in seed0}, 1: {r.item_id: r for r in seed1}}
    pooled = pooled_estimate(ACCURACY, a)  # only x is scored under both seeds
    assert (pooled.mean, pooled.n) == (1.0, 1)
    b = {s: {k: item(k, s, 0.0) for k in ("x", "y", "z")} for s in (0, 1)}
    diff = paired_metric_difference(ACCURACY, a, b)
    assert (diff.mean, diff.n) == (1.0, 1)
    assert estimate(ACCURACY, [item("y", 0, 0.0, "no judge")]).n == 0  # no number, not a zero


def test_eval_scores_the_official_gpt4_responses(benchmarks: Path, tmp_path: Path) -> None:
    responses = benchmarks / "ifeval" / "input_response_data_gpt4_20231107_145030.jsonl"
    result = CliRunner().invoke(
        app, ["eval", "--bench", "ifeval", "--responses", str(responses), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    counts = {k: (v["correct"], v["total"]) for k, v in summary.items()}
    assert counts == {
        "prompt_level_strict": (417, 541),
        "instruction_level_strict": (698, 834),
        "prompt_level_loose": (431, 541),
        "instruction_level_loose": (714, 834),
    }
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(items) == 541
    assert set(items[0]) == {
        "key",
        "instruction_id_list",
        "follow_instruction_list_strict",
        "follow_instruction_list_loose",
    }
