"""Bad input on the command line: a one-line error and exit 2, no traceback, nothing written.
Each case runs the real `longhorizon` entry point (`cli.main.main`) in this process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from longhorizon.cli.main import main

ZERO_STEPS = {
    "name": "bad",
    "student": {"tiny": {"architecture": "llama"}},
    "synth": {"domains": {"instruction": 4}},
    "distill": {"steps": 0},
}


def run_cli(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Exit code and everything printed, whitespace and box borders collapsed."""
    monkeypatch.setattr(sys, "argv", ["longhorizon", *args])
    monkeypatch.setenv("COLUMNS", "1000")  # one error on one line
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    text = " ".join((captured.out + captured.err).replace("│", " ").split())
    assert "Traceback" not in text
    return int(exited.value.code or 0), text


def test_broken_yaml_in_a_config_or_an_override_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "sft.yaml"
    broken.write_text("lr: [1,\n x: 2\n")
    code, text = run_cli(["sft", "--config", str(broken), "--dry-run"], monkeypatch, capsys)
    assert code == 2 and f"{broken}: not valid YAML" in text
    empty = tmp_path / "empty.yaml"
    empty.write_text("{}\n")
    args = ["sft", "--config", str(empty), "--set", "lr=[", "--dry-run"]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 2 and "override 'lr=[': the value is not YAML" in text


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("", "a recipe is a YAML mapping"),
        ("name: x\nsynth: 3\n", "synth is a mapping"),
        (yaml.safe_dump({**ZERO_STEPS, "seed": -1}), "seed Input should be greater than or equal"),
    ],
)
def test_a_recipe_of_the_wrong_shape_is_refused(
    tmp_path: Path,
    recipe: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe)
    code, text = run_cli(["run", str(path), "--dry-run"], monkeypatch, capsys)
    assert code == 2 and message in text


def test_an_invalid_stage_setting_fails_before_the_run_writes_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({**ZERO_STEPS, "out": str(tmp_path / "run")}))
    for extra in (["--dry-run"], []):
        code, text = run_cli(["run", str(path), *extra], monkeypatch, capsys)
        assert code == 2
        assert text.startswith("error: 1 validation error for DistillConfig steps Input should")
        assert "errors.pydantic.dev" not in text
    assert not (tmp_path / "run").exists()


def test_a_trainer_with_a_mistyped_task_store_stops_before_loading_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-tasks"
    config = tmp_path / "distill.yaml"
    teachers = [{"domain": "arith", "model": "tiny-tool-caller"}]
    fields = {"model": "tiny-llama", "teachers": teachers, "tasks": [str(missing)]}
    config.write_text(json.dumps({**fields, "output_dir": str(tmp_path / "run")}))
    code, text = run_cli(["distill", "--config", str(config)], monkeypatch, capsys)
    assert code == 2 and f"error: task store(s) ['{missing}'] do not exist" in text
    assert not missing.exists()  # not created as an empty store


def test_tool_corpus_responses_and_port_errors_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "nocorpus.jsonl"
    args = ["tools", "run", "search", "--args", '{"query": "x"}', "--corpus", str(corpus)]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 2 and f"error: {corpus}: corpus file not found" in text
    responses = tmp_path / "responses.jsonl"
    responses.write_text(json.dumps({"prompt": "x", "response": "y"}) + "\n")
    args = ["eval", "--bench", "ifeval", "--responses", str(responses), "--out", str(tmp_path)]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 2 and "no response for 541 IFEval prompts" in text
    args = ["eval", "--bench", "nosuchbench", "--out", str(tmp_path / "e"), "--dry-run"]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 2 and "unknown bench 'nosuchbench'; known: ifeval," in text
    code, text = run_cli(["view", str(tmp_path), "--port", "99999"], monkeypatch, capsys)
    assert code == 2 and "less than or equal to 65535" in text
    run = tmp_path / "not-a-run"
    run.mkdir()
    code, text = run_cli(["report", str(run), "--save", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "--save needs the run's recipe.yaml and stages.json" in text
    assert not (run / "report").exists()


def test_kag_stats_refuses_a_file_that_holds_no_graph_and_leaves_it_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty, text_file = tmp_path / "empty.db", tmp_path / "notes.jsonl"
    empty.write_bytes(b"")
    text_file.write_text('{"a": 1}\n')
    code, text = run_cli(["kag", "stats", str(empty)], monkeypatch, capsys)
    assert code == 2 and "is not a knowledge-action graph (no nodes table)" in text
    assert empty.read_bytes() == b""  # no schema written into it
    code, text = run_cli(["kag", "stats", str(text_file)], monkeypatch, capsys)
    assert code == 2 and "is not a SQLite database" in text
    nobody = "postgresql://kag@127.0.0.1:1/kag"  # port 1: nothing listens there
    code, text = run_cli(["kag", "stats", nobody], monkeypatch, capsys)
    assert code == 2 and 'connection to server at "127.0.0.1", port 1 failed' in text


def test_a_teacher_whose_domain_the_data_lacks_stops_before_loading_a_model(
    micro_run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A misspelt domain, or one the stores do not hold, fails with what the stores hold (not
    by the registry: users train teachers on domains of their own data)."""
    store = micro_run_dir / "synth" / "instruction" / "trajectories"
    config = tmp_path / "teach.yaml"
    stage = {"name": "sft", "data": {"paths": [str(store)]}}
    init = str(tmp_path / "no-model")  # never loaded: the data check comes first
    config.write_text(
        yaml.safe_dump({"init": init, "stages": [stage], "output_dir": str(tmp_path)})
    )
    args = ["teach", "--domain", "instructoin", "--config", str(config)]
    code, text = run_cli(args, monkeypatch, capsys)
    assert code == 2
    assert f"no training samples in ['{store}']: trajectories by domain: instruction " in text
    assert "the filters keep domains ['instructoin'], statuses ['COMPLETED']" in text
    missing = tmp_path / "tok"
    code, text = run_cli(["view", str(tmp_path), "--tokenizer", str(missing)], monkeypatch, capsys)
    assert code == 2 and f"--tokenizer {missing}: no tokenizer.json or tokenizer_config" in text


def test_store_stats_and_eval_compare_name_a_folder_that_is_not_theirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run_cli(["store", "stats", str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and "holds no trajectory shards (part-*.jsonl): not a store" in text
    missing = tmp_path / "no-eval"
    code, text = run_cli(["eval", "compare", str(missing), str(tmp_path)], monkeypatch, capsys)
    assert code == 2 and f"{missing} is not an evaluation directory (no such folder)" in text
