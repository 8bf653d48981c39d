"""results/ artefacts: a run's summary JSON holds exactly the numbers of its results table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from longhorizon.cli import report as report_cli
from longhorizon.report.summary import save_results
from tests.test_report import make_run


def test_saved_summary_holds_the_table_and_is_named_by_recipe_seed_commit(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "recipe.yaml").write_text("name: tiny\nseed: 3\n")
    stages = json.loads((run / "stages.json").read_text())
    (run / "stages.json").write_text(json.dumps(stages | {"code_version": "0.1.0+gabc1234"}))

    folder = save_results(run, tmp_path / "results")

    assert folder == tmp_path / "results" / "tiny-seed3-abc1234"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["recipe"] == "tiny" and summary["seed"] == 3
    assert summary["code_version"] == "0.1.0+gabc1234"
    assert summary["stage_seconds"]["distill"] == 3.0
    rows = {(r["domain"], r["bench"]): r for r in summary["results"]}
    search = rows[("search", "search-heldout")]
    assert search["sft"] == {"mean": 0.5, "low": 0.25, "high": 0.75, "n": 4}
    assert search["teacher"] == {"mean": 0.75, "low": 0.5, "high": 1.0, "n": 4}
    assert rows[("instruction", "instruction-heldout")]["teacher"] is None
    average = rows[("average", "")]
    assert round(average["base"]["mean"], 6) == 0.175 and average["benches"]["teacher"] == 1
    assert (folder / "report.md").read_text() == (run / "report" / "report.md").read_text()
    images = sorted(p.name for p in (run / "report" / "plots").glob("*.png"))
    assert images and sorted(p.name for p in (folder / "plots").glob("*.png")) == images
    assert (folder / "recipe.yaml").read_text() == "name: tiny\nseed: 3\n"


def test_report_cli_saves_results(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    app = typer.Typer()
    app.command()(report_cli.report)
    result = CliRunner().invoke(
        app, [str(run), "--save", str(tmp_path / "r")], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0, result.output
    (folder,) = (tmp_path / "r").iterdir()
    assert folder.name.startswith("run-seed0-")
    assert json.loads((folder / "summary.json").read_text())["recipe"] == "run"
