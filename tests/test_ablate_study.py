"""Study files: the whole grid is validated before anything runs (`--dry-run` does only that),
every problem is named, and stage keys share exactly what the variants do not change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from longhorizon.ablate import load_study, plan_study
from longhorizon.ablate.keys import cell_keys
from longhorizon.cli.main import app
from longhorizon.training.data import DataConfig, Sample, build_samples
from tests.test_pipeline import MICRO
from tests.test_training_data import make_traj

ROOT = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, **study: Any) -> Path:
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump({**MICRO, "out": "unused"}))
    fields = {"name": "s", "recipe": "micro.yaml", "out": str(tmp_path / "out"), **study}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(fields))
    return path


def _dry_run(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ablate", str(path), "--dry-run"])
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("name", ["loss", "k", "length", "seeds", "routing"])
def test_builtin_studies_validate(name: str) -> None:
    code, output = _dry_run(ROOT / "studies" / f"{name}.yaml")
    assert code == 0, output
    assert "study valid" in output


@pytest.mark.parametrize(
    ("study", "message"),
    [
        ({"variants": {"a": ["distill.loss.kindd=sva"], "b": []}}, "variant 'a' (seed 0)"),
        ({"variants": {"a": ["distill.loss.kindd=sva"], "b": []}}, "kindd"),
        ({"variants": {"a": ["nosuch.field=1"], "b": []}}, "nosuch"),
        ({"variants": {"a": ["distill.loss.kind=nope"], "b": []}}, "loss.kind"),
        ({"variants": {"a": ["seed=3"], "b": []}}, "the study sets each cell's seed"),
        ({"variants": {"a": [], "b": {"model": "teacher"}}}, "model 'teacher' is not one of"),
        ({"variants": {"a": []}}, "give at least two"),
        ({"variants": {"a": [], "b": ["eval.limit=2"]}, "seeds": []}, "`seeds` is empty"),
        ({"variants": {"a": [], "b": ["eval.limit=2"]}, "baseline": "c"}, "baseline 'c'"),
        (
            {"variants": {"a": ["distill.steps=2"], "b": ["distill.steps=2"]}},
            "variants 'a' and 'b' resolve to the same evaluated model",
        ),
        (
            {"variants": {"a": [], "b": ["distill.steps=1"]}},  # the recipe's own value
            "compare a run with itself",
        ),
        ({"variants": {"a": [], "b": []}, "recipe": "nope.yaml"}, "no recipe file 'nope.yaml'"),
    ],
)
def test_bad_studies_name_the_problem_and_touch_nothing(
    tmp_path: Path, study: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, **study)
    code, output = _dry_run(path)
    assert code == 2 and message in output, output
    result = CliRunner().invoke(app, ["ablate", str(path)])  # a real run refuses the same way
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_stage_keys_share_what_a_variant_does_not_change(tmp_path: Path) -> None:
    study, base = load_study(
        _write(
            tmp_path,
            seeds=[0, 1],
            variants={"sva": ["distill.loss.kind=sva"], "lr": ["teachers.lr=1e-4"]},
        )
    )
    planned, benches = plan_study(study, base)
    assert benches == ["instruction-heldout", "search-heldout"]
    keys = {(p.cell.variant, p.cell.seed): p.keys for p in planned}
    sva, lr, other_seed = keys["sva", 0], keys["lr", 0], keys["sva", 1]
    assert sva.stages["synth"] == lr.stages["synth"] and sva.stages["sft"] == lr.stages["sft"]
    assert sva.stages["teachers"] != lr.stages["teachers"]  # teacher lr changes teachers on
    assert sva.stages["distill"] != lr.stages["distill"]
    assert sva.evals["sft"] == lr.evals["sft"] and sva.evals["base"] == lr.evals["base"]
    assert sva.evals["distilled"] != lr.evals["distilled"]
    assert all(sva.stages[s] != other_seed.stages[s] for s in sva.stages)
    # Only the stage config decides: the cell's own directory does not enter any key.
    (cell,) = [p.cell for p in planned if p.cell.name == "sva/seed0"]
    moved = cell.recipe.model_copy(update={"out": tmp_path / "elsewhere"})
    assert cell_keys(moved) == sva


def test_token_share_keeps_the_first_share_of_each_training_sequence() -> None:
    """The length study's knob: `sft.data.token_share` truncates every sequence to its first
    ceil(share x length) tokens, masks kept; a piece left without a trained token is dropped."""
    traj = make_traj("a")  # ids 1..10; the model's tokens are 4, 5 and 8, 9, 10
    (full,) = build_samples([traj], DataConfig(), max_len=100)

    def cut(share: float) -> list[Sample]:
        return build_samples([traj], DataConfig(token_share=share), max_len=100)

    (half,) = cut(0.5)
    assert half.input_ids.tolist() == [1, 2, 3, 4, 5]
    assert half.loss_mask.tolist() == full.loss_mask.tolist()[:5]
    (third,) = cut(0.35)  # ceil(3.5) = 4 tokens
    assert third.input_ids.tolist() == [1, 2, 3, 4]
    assert cut(0.25) == []  # ceil(2.5) = 3 tokens of prompt: nothing to train on
    assert cut(1.0)[0].input_ids.tolist() == full.input_ids.tolist()
    with pytest.raises(ValueError):
        DataConfig(token_share=0)


def test_variants_runs_a_subset_and_always_keeps_the_baseline(tmp_path: Path) -> None:
    path = ROOT / "studies" / "loss.yaml"
    args = ["ablate", str(path), "--variants", "full_rkl", "--seeds", "0", "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, output
    assert "2 cells" in output and "baseline: sva_tail" in output
    assert "sva_tail/seed0" in output and "full_rkl/seed0" in output and "union" not in output
    result = CliRunner().invoke(app, [*args[:3], "ful_rkl,union", "--dry-run"])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "no variant 'ful_rkl'; known: sva_tail, sva, sampled_token, full_rkl" in output
