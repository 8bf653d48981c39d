"""Study statistics on small fixed inputs: the two-level bootstrap, Holm, the MDE, and the
sentences a study prints (significance in words, Holm only with several comparisons)."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from longhorizon.ablate.analysis import CellScores, analyse, read_cell
from longhorizon.ablate.results import write_outputs
from longhorizon.ablate.stats import holm, minimum_detectable_effect, two_level_bootstrap
from longhorizon.ablate.study import Cell
from longhorizon.ablate.table import notes
from longhorizon.evaluation.items import append_items, items_path
from longhorizon.evaluation.stats import paired_difference
from longhorizon.evaluation.types import ItemResult
from longhorizon.pipeline.recipe import Recipe, StudentSpec

Z = 1.959963984540054 + 0.8416212335729143  # z(0.975) + z(0.8)


def test_holm_on_known_p_values() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]  # capped at 1, monotone
    assert holm([0.2]) == [0.2]
    assert holm([]) == []


def test_minimum_detectable_effect_from_the_held_out_size() -> None:
    assert minimum_detectable_effect([[100]]) == pytest.approx(Z * math.sqrt(0.5 / 100))
    counts = [[100, 50], [100, 50]]  # 2 seeds x 2 benches
    assert minimum_detectable_effect(counts, 1) == pytest.approx(Z * math.sqrt(0.5 / 50 / 2))
    # the average of two benches over two seeds: (1/(2*2))^2 * sum of 0.5/n
    assert minimum_detectable_effect(counts) == pytest.approx(Z * math.sqrt(0.03 / 16))


def test_constant_differences_have_a_degenerate_interval_and_the_smallest_p() -> None:
    boot = two_level_bootstrap([[[0.25] * 5], [[0.25] * 3]], resamples=999)
    assert boot.mean(0) == 0.25 and boot.interval(0) == (0.25, 0.25)
    assert boot.p_value(0) == pytest.approx(2 / 1000)
    assert boot.seed_sd(0) == 0.0


def test_seeds_are_the_second_level() -> None:
    """Two seeds whose items agree within each seed: all the variance is between seeds, so the
    resamples are {0, 0.5, 1} with probability 1/4, 1/2, 1/4, and the interval is [0, 1]."""
    boot = two_level_bootstrap([[[0.0] * 4], [[1.0] * 4]], resamples=4000)
    assert boot.mean(0) == 0.5
    assert boot.interval(0) == (0.0, 1.0)
    assert set(np.unique(boot.draws)) == {0.0, 0.5, 1.0}
    assert np.mean(boot.draws == 0.5) == pytest.approx(0.5, abs=0.03)
    assert boot.seed_sd(0) == pytest.approx(math.sqrt(0.5))
    assert boot.seeds(0).tolist() == [0.0, 1.0]


def test_average_is_the_mean_of_bench_means_over_seed_means() -> None:
    groups = [[[1, 0], [1, 1, 1]], [[0, 0], [1, 0, 0]]]  # seed x bench x items
    boot = two_level_bootstrap(groups, resamples=200)
    assert boot.point.tolist() == pytest.approx([0.25, 2 / 3])
    assert boot.mean() == pytest.approx((0.25 + 2 / 3) / 2)
    assert boot.seeds().tolist() == pytest.approx([0.75, (0 + 1 / 3) / 2])
    assert boot.draws.shape == (200, 2)


def test_one_seed_is_the_paired_item_bootstrap() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2, 200).astype(float), rng.integers(0, 2, 200).astype(float)
    boot = two_level_bootstrap([[(a - b).tolist()]])
    reference = paired_difference(a.tolist(), b.tolist())
    assert boot.mean(0) == pytest.approx(reference.mean)
    assert boot.interval(0) == pytest.approx((reference.low, reference.high), abs=0.01)
    assert math.isnan(boot.seed_sd(0))


def test_bootstrap_refuses_a_seed_without_items() -> None:
    with pytest.raises(ValueError, match="no items"):
        two_level_bootstrap([[[1.0]], [[]]])


def _cells(scores: dict[str, list[float]], seeds: int = 2) -> list[CellScores]:
    recipe = Recipe(name="t", out=Path("cell"), student=StudentSpec(model="m"))
    return [
        CellScores(
            Cell(variant, seed, "distilled", recipe),
            Path("eval"),
            {"b": {f"i{k}": x for k, x in enumerate(values)}},
            {"b": []},
        )
        for seed in range(seeds)
        for variant, values in scores.items()
    ]


def test_the_notes_say_significance_in_words_and_holm_with_several_comparisons() -> None:
    base = [0.0, 1.0] * 10
    two = analyse(_cells({"base": base, "same": base[::-1]}), "base", ["b"])
    (verdict, seeds_line, mde) = notes(two)
    assert verdict.startswith("same - base on b: +0.000 [-0.")  # differences of -1 and +1
    assert verdict.endswith(": not significant (the 95% interval covers 0).")
    assert seeds_line.startswith("same beats base on average in 0 of 2 seed(s) (seed 0: +0.000")
    assert mde.startswith("Minimum detectable effect") and "b 40" in mde
    assert not any("Holm" in x for x in notes(two))
    one_seed = notes(analyse(_cells({"base": base, "up": [1.0] * 20}, seeds=1), "base", ["b"]))
    assert one_seed[-2].startswith("One seed: the intervals resample held-out items only")
    assert not any(x.startswith("One seed") for x in notes(two))

    three = analyse(_cells({"base": base, "up": [1.0] * 20, "same": base}), "base", ["b"])
    lines = notes(three)
    assert "up - base on b: +0.500 [" in lines[0] and "significantly higher" in lines[0]
    holm_line = next(x for x in lines if "Holm" in x)
    assert "2 variants are compared with base" in holm_line
    (up, same) = three.comparisons
    assert same.p_holm == 1.0 and up.p_holm == pytest.approx(2 * 2 / 10_001)


def test_outputs_from_item_files_match_a_recomputation_by_hand(tmp_path: Path) -> None:
    """Real items files (two decoding seeds, one item missing under one of them) for 3
    variants x 2 seeds x 2 benches -> results.json, table.txt and plot.png; every difference
    recomputed here from the files with plain Python."""
    rng = np.random.default_rng(7)
    benches = ["instruction-heldout", "search-heldout"]
    cells = []
    for seed in (0, 1):
        for variant in ("base", "a", "b"):
            recipe = Recipe(
                name="t", out=tmp_path / variant / str(seed), student=StudentSpec(model="m")
            )
            eval_dir = tmp_path / "eval" / f"{variant}{seed}"
            for bench in benches:
                for decode in (0, 1):
                    ids = range(9 if (variant, decode) == ("a", 1) else 10)  # a/1 lacks i9
                    append_items(
                        items_path(eval_dir / bench, decode),
                        [
                            ItemResult(
                                bench=bench,
                                item_id=f"i{i}",
                                seed=decode,
                                score=float(rng.integers(0, 2)),
                            )
                            for i in ids
                        ],
                    )
            cells.append(read_cell(Cell(variant, seed, "distilled", recipe), eval_dir, benches))
    analysis = analyse(cells, "base", benches)
    write_outputs("files", analysis, tmp_path, Console(file=io.StringIO()))
    results = json.loads((tmp_path / "results.json").read_text())

    def by_hand(variant: str, seed: int, bench: str) -> dict[str, float]:
        eval_dir = tmp_path / "eval" / f"{variant}{seed}" / bench
        runs = [
            {json.loads(x)["item_id"]: json.loads(x)["score"] for x in p.read_text().splitlines()}
            for p in sorted(eval_dir.glob("items-seed*.jsonl"))
        ]
        return {
            i: sum(r[i] for r in runs) / len(runs) for i in runs[0] if all(i in r for r in runs)
        }

    table = (tmp_path / "table.txt").read_text()
    for variant in ("a", "b"):
        bench_means = []
        for bench in benches:
            per_seed = []
            for seed in (0, 1):
                x, y = by_hand(variant, seed, bench), by_hand("base", seed, bench)
                per_seed.append(
                    sum(x[i] - y[i] for i in x if i in y) / len([i for i in x if i in y])
                )
            reported = results["comparisons"][variant][bench]
            assert reported["per_seed"] == pytest.approx(per_seed, abs=1e-12)
            assert reported["mean"] == pytest.approx(sum(per_seed) / 2, abs=1e-12)
            assert reported["n_per_seed"] == ([9, 9] if variant == "a" else [10, 10])
            assert f"{sum(per_seed) / 2:+.3f} [" in table
            bench_means.append(sum(per_seed) / 2)
        average = results["comparisons"][variant]["average"]
        assert average["mean"] == pytest.approx(sum(bench_means) / 2, abs=1e-12)
        assert average["p_holm"] is not None
    assert len(results["cells"]) == 3 * 2 * 2
    cell = next(c for c in results["cells"] if c["variant"] == "a" and c["seed"] == 1)
    assert cell["n"] == 9 and cell["items"] == [
        "eval/a1/instruction-heldout/items-seed0.jsonl",
        "eval/a1/instruction-heldout/items-seed1.jsonl",
    ]
    assert "Multiple comparisons: 2 variants" in table
    assert (tmp_path / "plot.png").read_bytes()[:4] == b"\x89PNG"


def test_a_cell_that_gives_one_answer_to_most_items_is_called_collapsed(tmp_path: Path) -> None:
    """The score of a model that says the same thing to every prompt is what that answer
    earns: the notes name the cell, the answer and the counts; empty answers do not count."""
    recipe = Recipe(name="t", out=tmp_path / "cell", student=StudentSpec(model="m"))
    said = {
        "base": [f"answer {i}" for i in range(12)],
        "stuck": ["Massachusetts"] * 7 + [f"other {i}" for i in range(3)] + [""] * 2,
        "mute": [""] * 12,  # never answered: no verdict
    }
    cells = []
    for variant, answers in said.items():
        eval_dir = tmp_path / variant
        append_items(
            items_path(eval_dir / "b", 0),
            [
                ItemResult(bench="b", item_id=f"i{i}", seed=0, score=i % 2, prediction=a)
                for i, a in enumerate(answers)
            ],
        )
        cells.append(read_cell(Cell(variant, 0, "distilled", recipe), eval_dir, ["b"]))
    stuck = cells[1].answers["b"]
    assert (stuck.answered, stuck.distinct, stuck.top_count) == (10, 4, 7)
    assert stuck.collapsed and not cells[0].answers["b"].collapsed
    assert not cells[2].answers["b"].collapsed  # nothing answered: below MIN_ANSWERS
    lines = [x for x in notes(analyse(cells, "base", ["b"])) if "collapsed" in x]
    assert lines == [
        "stuck/seed0 gave one answer to 7 of 10 answered items of b ('Massachusetts'; 4 "
        "distinct): a collapsed model, whose score is what that answer earns."
    ]
