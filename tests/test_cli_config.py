"""The shared `--config` / `--set` / `--dry-run` trio: sft, distill and eval resolve configs the
same way (defaults < file < a command's own flags < --set), and a bad field is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.evaluation.config import EvalConfig


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def test_eval_dry_run_from_a_config_file_with_overrides(tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(json.dumps({"bench": ["ifeval", "molbench"], "out": "e", "model": "m"}))
    result = invoke("eval", "--config", str(config), "--set", "seeds=3", "--dry-run")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["bench"] == ["ifeval", "molbench"] and printed["seeds"] == 3
    assert printed["batch_size"] == 8 and printed["backend"] == "hf"
    # A flag beats the file; --set beats the flag.
    result = invoke("eval", "--config", str(config), "--seeds", "2", "--limit", "5", "--dry-run")
    assert yaml.safe_load(result.output)["seeds"] == 2
    result = invoke(
        "eval", "--config", str(config), "--seeds", "2", "--set", "seeds=4", "--dry-run"
    )
    assert yaml.safe_load(result.output)["seeds"] == 4


def test_eval_legacy_flags_still_resolve(tmp_path: Path) -> None:
    result = invoke(
        "eval", "--bench", "ifeval, molbench", "--out", str(tmp_path), "--model", "m",
        "--level", 'instruction={"max_instructions": 2}', "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = EvalConfig.model_validate(yaml.safe_load(result.output))
    assert cfg.bench == ("ifeval", "molbench") and cfg.out == tmp_path
    assert cfg.levels["instruction"]["max_instructions"] == 2
    assert cfg.options().batch_size == 8
    missing = invoke("eval", "--bench", "ifeval")
    assert missing.exit_code == 2 and "--bench and --out" in missing.output
    bad = invoke("eval", "--bench", "ifeval", "--out", "x", "--set", "backend=tgi", "--dry-run")
    assert bad.exit_code == 2 and "backend" in bad.output


def test_sft_dry_run_uses_the_same_helper(tmp_path: Path) -> None:
    config = tmp_path / "sft.yaml"
    config.write_text(json.dumps({"model": "tiny-llama", "max_len": 64}))
    result = invoke("sft", "--config", str(config), "--set", "data.overlong=drop", "--dry-run")
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["max_len"] == 64 and printed["data"]["overlong"] == "drop"
    bad = invoke("sft", "--config", str(config), "--set", "no_such_field=1")
    assert bad.exit_code == 2 and "no_such_field" in bad.output
