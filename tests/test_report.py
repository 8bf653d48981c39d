"""The run report: a small run directory written in the pipeline's real formats, reported."""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from longhorizon.cli import report as report_cli
from longhorizon.core import FunctionCall, Step, ToolCall, TrajectoryStore, Usage
from longhorizon.core.trajectory import Status
from longhorizon.evaluation.items import append_items
from longhorizon.evaluation.stats import Estimate, paired_difference
from longhorizon.evaluation.types import BenchResult, ItemResult, MetricResult
from longhorizon.report import build_results, load_run, write_report
from longhorizon.report.results import paired_items
from longhorizon.synthesis.decontam import Hit
from longhorizon.synthesis.selfplay import SynthReport
from tests.test_core_types import make_trajectory

EVIL = "<script>alert('x')</script>"

# Pooled estimates per (label, bench), written into result.json as they are.
POOLED = {
    ("base", "search-heldout"): Estimate(0.25, 0.0, 0.5, 4),
    ("sft", "search-heldout"): Estimate(0.5, 0.25, 0.75, 4),
    ("teacher-search", "search-heldout"): Estimate(0.75, 0.5, 1.0, 4),
    ("distilled", "search-heldout"): Estimate(0.6, 0.4, 0.8, 4),
    ("base", "instruction-heldout"): Estimate(0.1, 0.0, 0.3, 3),
    ("sft", "instruction-heldout"): Estimate(0.7, 0.6, 0.9, 3),
    ("distilled", "instruction-heldout"): Estimate(0.8, 0.7, 0.95, 3),
}

# Item scores by (label, bench) -> seed -> item -> score. Extra items and seeds on one side
# only must be left out of the paired difference.
ITEMS = {
    ("sft", "search-heldout"): {
        0: {"q0": 0.0, "q1": 1.0, "q2": 1.0, "q3": 0.0},
        1: {"q0": 1.0, "q1": 1.0, "q2": 0.0},  # q3 missing under seed 1: not paired
    },
    ("distilled", "search-heldout"): {
        0: {"q0": 1.0, "q1": 1.0, "q2": 1.0, "q3": 1.0, "q9": 1.0},  # q9 only here
        1: {"q0": 1.0, "q1": 0.0, "q2": 1.0, "q3": 1.0},
        2: {"q0": 0.0, "q1": 0.0, "q2": 0.0},  # seed 2 only here
    },
    ("sft", "instruction-heldout"): {0: {"i0": 1.0, "i1": 0.0, "i2": 1.0}},
    ("distilled", "instruction-heldout"): {0: {"i0": 1.0, "i1": 1.0, "i2": 1.0}},
}


def write_bench(run: Path, label: str, bench: str, pooled: Estimate) -> None:
    bench_dir = run / "eval" / label / bench
    bench_dir.mkdir(parents=True)
    by_seed = ITEMS.get((label, bench), {0: {}})
    for seed, scores in by_seed.items():
        append_items(
            bench_dir / f"items-seed{seed}.jsonl",
            [ItemResult(bench=bench, item_id=i, seed=seed, score=s) for i, s in scores.items()],
        )
    metric = MetricResult(name="pass_rate", per_seed={s: pooled for s in by_seed}, pooled=pooled)
    result = BenchResult(
        bench=bench,
        model=label,
        seeds=sorted(by_seed),
        primary="pass_rate",
        metrics={"pass_rate": metric},
        n_items={s: len(v) for s, v in by_seed.items()},
    )
    (bench_dir / "result.json").write_text(result.to_json())


def write_synth(run: Path, domain: str, tool: str, n: int) -> None:
    out = run / "synth" / domain
    out.mkdir(parents=True)
    report = SynthReport(
        domain=domain,
        wanted=n,
        accepted=n,
        proposed=n + 3,
        rejected=Counter({"shortcut": 2, "invalid": 1}),
        turns=[2] * n,
        tokens=[10] * n,
        contamination=[Hit(EVIL, "ifeval/input_data.jsonl", 4)] if domain == "search" else [],
    )
    (out / "synth_report.json").write_text(json.dumps(report.summary(), indent=2, default=str))
    store = TrajectoryStore(out / "trajectories")
    base = make_trajectory()
    for k in range(n):
        call = ToolCall(id=f"c{k}", function=FunctionCall(name=tool, arguments="{}"))
        steps = [Step(index=j, action=call, observation="obs") for j in range(k + 1)]
        store.add(
            base.model_copy(
                update={
                    "id": f"{domain}-{k}",
                    "domain": domain,
                    "steps": steps,
                    "usage": Usage(model_calls=k + 1, tool_calls=k + 1),
                    "status": Status.TRUNCATED if k == 0 else Status.COMPLETED,
                }
            )
        )
    store.close()


def write_jsonl(path: Path, records: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def opd_record(step: int) -> dict[str, object]:
    domain = {"loss": 0.5 / step, "kl": 0.4 / step, "coverage": 0.5 + 0.1 * step, "tokens": 64}
    rollout = {"episodes": 4.0, "success": 0.25 * step, "truncation": 0.25, "tool_calls": 2.0}
    return {
        "step": step,
        "loss": 1.0 / step,
        "domains": {"search": domain, "instruction": domain},
        "rollouts": {"search": rollout, "instruction": rollout},
        "seconds": 1.5,
    }


def make_run(root: Path) -> Path:
    """A complete small run directory under `root`, in the pipeline's formats."""
    run = root / "run"
    run.mkdir()
    # A URL in the recipe is text, not a resource the page loads.
    (run / "recipe.yaml").write_text("student: tiny\nbase_url: http://127.0.0.1:8000/v1\n")
    stages = {s: {"done": True, "seconds": 2.0} for s in ("synth", "sft", "teachers", "eval")}
    stages["distill"] = {"done": True, "seconds": 3.0}
    (run / "stages.json").write_text(json.dumps({"stages": stages}))
    write_synth(run, "search", "search", 3)
    write_synth(run, "instruction", "python", 2)
    sft = [
        {"step": s, "loss": 2.0 / s, "lr": 1e-5, "tokens": 100, "tokens_per_s": 50.0, "step_s": 2}
        for s in (1, 2, 3)
    ]
    write_jsonl(run / "sft" / "metrics.jsonl", sft)
    for domain in ("search", "instruction"):
        write_jsonl(run / "teachers" / domain / "stage-1-sft" / "metrics.jsonl", sft[:2])
    write_jsonl(run / "distill" / "metrics.jsonl", [opd_record(1), opd_record(2)])
    for (label, bench), pooled in POOLED.items():
        write_bench(run, label, bench, pooled)
    hits = {"hits": [{"item_id": "i7", "source": "a|b.jsonl", "shared_ngrams": 3}], "checked": 9}
    (run / "eval" / "contamination.json").write_text(json.dumps(hits))
    return run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def table_row(md: str, first: str, second: str = "") -> list[str]:
    """The cells of the results-table row starting with `first | second`."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first and (not second or cells[1] == second):
            return cells
    raise AssertionError(f"no row {first} {second} in:\n{md}")


def test_report_files_and_exact_results_table(run_dir: Path) -> None:
    md_path, html_path = write_report(run_dir)
    assert md_path == run_dir / "report" / "report.md" and md_path.exists()
    assert html_path == run_dir / "report" / "report.html" and html_path.exists()
    md = md_path.read_text()

    search = table_row(md, "search", "search-heldout")
    assert search[2:7] == [
        "pass_rate",
        "0.250 [0.000, 0.500]",
        "0.500 [0.250, 0.750]",
        "0.750 [0.500, 1.000]",
        "0.600 [0.400, 0.800]",
    ]
    instruction = table_row(md, "instruction", "instruction-heldout")
    # No teacher-instruction evaluation exists, but teachers were evaluated: '-'.
    assert instruction[3:7] == ["0.100 [0.000, 0.300]", "0.700 [0.600, 0.900]", "-",
                                "0.800 [0.700, 0.950]"]  # fmt: skip
    average = table_row(md, "average")
    # Means of the two benches; each side: per-bench distances in quadrature / 2.
    assert average[3] == "0.175 [0.040, 0.335]"  # base: 0.175 - sqrt(.0725)/2, + sqrt(.1025)/2
    assert average[4] == "0.600 [0.465, 0.760]"  # sft: -sqrt(.0725)/2, +sqrt(.1025)/2
    assert average[5] == "0.750 [0.500, 1.000] (1/2 benches)"
    assert average[6] == "0.700 [0.588, 0.825]"  # distilled: - sqrt(.05)/2, + sqrt(.0625)/2
    assert "![Scores per bench" in md and "(plots/scores.png)" in md
    assert "shortcut" in md and "ifeval/input_data.jsonl" in md  # synthesis tables, hits
    assert "a\\|b.jsonl" in md  # a pipe in a cell does not break the table
    assert "base_url: http://127.0.0.1:8000/v1" in md  # the recipe appendix, verbatim
    # Teachers exist for both domains, but only teacher-search was evaluated.
    assert load_run(run_dir).notes == [
        "evaluation of teacher-instruction: missing (eval/teacher-instruction)"
    ]


def test_paired_difference_matches_a_hand_computed_one(run_dir: Path) -> None:
    md = write_report(run_dir)[0].read_text()
    # search-heldout: seeds 0 and 1 on both sides; items q0..q2 under both seeds on both sides
    # (q3: sft lacks seed 1; q9: distilled only; seed 2: distilled only).
    distilled = [1.0, 0.5, 1.0]  # q0 (1+1)/2, q1 (1+0)/2, q2 (1+1)/2
    sft = [0.5, 1.0, 0.5]  # q0 (0+1)/2, q1 (1+1)/2, q2 (1+0)/2
    expected = paired_difference(distilled, sft)
    assert expected.mean == pytest.approx((0.5 - 0.5 + 0.5) / 3)
    run = load_run(run_dir)
    ids, got_d, got_s = paired_items(
        run.evals["distilled"]["search-heldout"].items,  # type: ignore[index]
        run.evals["sft"]["search-heldout"].items,  # type: ignore[index]
    )
    assert (ids, got_d, got_s) == (["q0", "q1", "q2"], distilled, sft)
    table = build_results(run)
    row = next(r for r in table.rows if r.bench == "search-heldout")
    assert row.diff == expected
    assert table_row(md, "search", "search-heldout")[7] == str(expected)
    # instruction-heldout: distilled 1, 1, 1 vs sft 1, 0, 1.
    inst = next(r for r in table.rows if r.bench == "instruction-heldout")
    assert inst.diff == paired_difference([1.0, 1.0, 1.0], [1.0, 0.0, 1.0])
    # The average weighs both benches equally: (1/6 + 1/3) / 2 = 0.25.
    assert table.average is not None and table.average.diff is not None
    assert table.average.diff.mean == pytest.approx(0.25)
    assert table.average.diff.n == 6
    assert table_row(md, "average")[7].startswith("0.250 [")


def test_html_is_self_contained_and_embeds_every_plot(run_dir: Path) -> None:
    _, html_path = write_report(run_dir)
    page = html_path.read_text()
    pngs = sorted((run_dir / "report" / "plots").glob("*.png"))
    names = {p.stem for p in pngs}
    assert names == {
        "scores", "synth_lengths", "tool_usage", "sft_loss", "teacher_loss",
        "opd_loss_kl", "opd_coverage", "opd_rollouts",
    }  # fmt: skip
    for png in pngs:
        assert png.read_bytes().startswith(b"\x89PNG")
        assert "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode() in page
    assert page.count("<img ") == len(pngs)
    # Nothing is fetched: no http(s) or protocol-relative URL in src/href/url()/@import.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert not re.search(r"url\(|@import|<link|<script", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page  # escaped, not run
    assert "0.500 [0.250, 0.750]" in page


def test_plots_and_report_are_deterministic(run_dir: Path) -> None:
    md_path, html_path = write_report(run_dir)
    first = {p.name: p.read_bytes() for p in (run_dir / "report" / "plots").glob("*.png")}
    md, page = md_path.read_text(), html_path.read_text()
    write_report(run_dir)
    again = {p.name: p.read_bytes() for p in (run_dir / "report" / "plots").glob("*.png")}
    assert again == first
    assert md_path.read_text() == md and html_path.read_text() == page


def test_missing_stages_are_reported_not_fatal(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "distill")
    shutil.rmtree(run_dir / "eval" / "distilled")
    shutil.rmtree(run_dir / "teachers")
    shutil.rmtree(run_dir / "synth" / "instruction" / "trajectories")
    (run_dir / "sft" / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    stages = {"stages": {"distill": {"done": False, "seconds": 1.0}}}
    (run_dir / "stages.json").write_text(json.dumps(stages))
    (run_dir / "eval" / "contamination.json").write_text("{not json")
    md_path, _ = write_report(run_dir)
    md = md_path.read_text()
    assert "distillation (OPD) curve: missing (distill/metrics.jsonl)" in md
    assert "evaluation of distilled: missing (eval/distilled)" in md
    assert "teacher curves: missing (teachers)" in md
    assert "synthesis trajectories (instruction): missing" in md
    assert "contamination audit: unreadable (eval/contamination.json" in md
    assert "| distill | not finished |" in md
    row = table_row(md, "search", "search-heldout")
    assert row[6] == "missing" and row[7] == "-"  # no distilled model: no paired difference
    assert table_row(md, "average")[6] == "missing"
    plots = {p.stem for p in (run_dir / "report" / "plots").glob("*.png")}
    assert not plots & {"opd_loss_kl", "opd_coverage", "opd_rollouts", "teacher_loss"}
    assert "sft_loss" in plots  # the torn last line of metrics.jsonl is ignored


def test_empty_run_dir_and_cli(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    md = write_report(empty)[0].read_text()
    assert "No evaluation results" in md and "recipe: missing (recipe.yaml)" in md
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")

    app = typer.Typer()
    app.command()(report_cli.report)
    runner = CliRunner()
    result = runner.invoke(app, [str(run_dir)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "0.500 [0.250, 0.750]" in result.output
    assert "report.md" in result.output and "report.html" in result.output
    missing = runner.invoke(app, [str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_average_interval_formula() -> None:
    from longhorizon.report.results import average_estimate

    got = average_estimate([Estimate(0.5, 0.25, 0.75, 4), Estimate(0.7, 0.6, 0.9, 3)])
    assert got.mean == pytest.approx(0.6)
    assert got.low == pytest.approx(0.6 - np.sqrt(0.25**2 + 0.1**2) / 2)
    assert got.high == pytest.approx(0.6 + np.sqrt(0.25**2 + 0.2**2) / 2)
    assert got.n == 7


def grpo_record(step: int, reward: float) -> dict[str, object]:
    """A GRPO step record as `rl/grpo.py` logs it (the fields the report reads)."""
    domain = {"clip_low": 0.01 * step, "clip_high": 0.02, "kl": 0.001 * step, "entropy": 2.0}
    return {"step": step, "loss": 0.1, "reward_mean": reward, "domains": {"instruction": domain},
            "seconds": 60.0}  # fmt: skip


def test_grpo_teacher_stage_shows_its_label_curve_and_plot(run_dir: Path) -> None:
    grpo = run_dir / "teachers" / "instruction" / "stage-2-grpo" / "metrics.jsonl"
    write_jsonl(grpo, [grpo_record(1, 0.25), grpo_record(2, 0.5)])
    md_path, _ = write_report(run_dir)
    md = md_path.read_text()
    assert "teacher-instruction: stage-1-sft → stage-2-grpo" in md
    assert "teacher-search: stage-1-sft" in md
    # steps, first and last reward, last KL, mean clip fraction (low + high), seconds
    assert table_row(md, "instruction", "stage-2-grpo")[2:] == [
        "2", "0.250", "0.500", "0.00200", "0.035", "120.0"
    ]  # fmt: skip
    assert table_row(md, "instruction", "stage-1-sft")[2] == "2"  # the SFT curve, as before
    assert (run_dir / "report" / "plots" / "teacher_rl.png").exists()
    assert "(plots/teacher_rl.png)" in md
