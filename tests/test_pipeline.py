"""`longhorizon run`: recipes validate; a micro recipe runs end to end and resumes after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from longhorizon.cli.main import app

MICRO = {
    "name": "micro",
    "seed": 0,
    "student": {
        "tiny": {
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "seed": 0,
        }
    },
    "synth": {
        "domains": {"search": 8, "instruction": 8},
        "levels": {
            "search": {"entities": 200, "hops": [1, 1]},  # 4 tool steps + the answer: 5 turns
            "instruction": {
                "max_instructions": 1,
                "max_response_chars": 600,
                "informative_only": True,
            },
        },
    },
    "sft": {
        "max_len": 2048,
        "batch_size": 2,
        "lr": 1.0e-3,
        "max_steps": 4,
        "num_threads": 1,
        "save_every": 1,
    },
    "teachers": {"lr": 5.0e-4, "max_steps": 1},
    "distill": {
        "steps": 1,
        "loss": {"kind": "sva", "k": 8},
        "rollout": {"prompts_per_step": 2, "concurrency": 2, "max_turns": 5, "max_tokens": 16},
    },
    "eval": {
        "seeds": 1,
        "limit": 2,
        "limits": {"instruction-heldout": 3},
        "max_turns": 5,
        "max_tokens": 16,
        "batch_size": 2,
    },
}


def test_builtin_recipes_validate_with_dry_run() -> None:
    for name in ("tiny", "tiny-grpo", "smollm2", "agents-a1"):
        result = CliRunner().invoke(app, ["run", name, "--dry-run"])
        assert result.exit_code == 0, result.output
        assert "recipe valid" in result.output
    bad = CliRunner().invoke(app, ["run", "no-such-recipe", "--dry-run"])
    assert bad.exit_code == 2 and "no built-in recipe" in bad.output


def test_the_checkout_recipes_are_the_builtin_ones_and_all_validate() -> None:
    """recipes/ (what the README points at) links to the packaged recipes, plus variants
    that validate too."""
    root = Path(__file__).resolve().parents[1]
    packaged = sorted((root / "src/longhorizon/recipes").glob("*.yaml"))
    assert [p.name for p in packaged] == [
        "agents-a1.yaml",
        "smollm2.yaml",
        "tiny-grpo.yaml",
        "tiny-six.yaml",
        "tiny.yaml",
    ]
    for path in packaged:
        assert (root / "recipes" / path.name).read_text() == path.read_text(), path.name
    for path in sorted((root / "recipes").glob("tiny*.yaml")):
        result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
        assert result.exit_code == 0 and "recipe valid" in result.output, result.output


def test_dry_run_shows_the_generalist_teacher_and_soft_routing(tmp_path: Path) -> None:
    def dry_run(**changes: dict[str, object]) -> str:
        recipe = {**MICRO, "out": str(tmp_path)}
        for section, fields in changes.items():
            recipe[section] = {**recipe[section], **fields}  # type: ignore[dict-item]
        path = tmp_path / "r.yaml"
        path.write_text(yaml.safe_dump(recipe))
        result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    generalist = dry_run(teachers={"generalist": True})
    assert "teacher/generalist" in generalist and "teacher-generalist" in generalist
    assert "teacher/search" not in generalist
    soft = dry_run(distill={"routing": "soft"})
    assert "soft routing instruction <- 0.5 instruction + 0.5 search" in soft


def test_bad_recipe_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump({**MICRO, "out": str(tmp_path), "synth": {"domains": {"chess": 3}}})
    )
    result = CliRunner().invoke(app, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2 and "unknown domain(s) ['chess']" in result.output


def test_micro_pipeline_resumes_after_a_kill_during_sft(tmp_path: Path) -> None:
    out = tmp_path / "run"
    recipe = tmp_path / "micro.yaml"
    recipe.write_text(yaml.safe_dump({**MICRO, "out": str(out)}))
    command = [sys.executable, "-m", "longhorizon.cli.main", "run", str(recipe)]
    killed = subprocess.run(
        command, env={**os.environ, "LONGHORIZON_SFT_KILL_AT_STEP": "2"}, capture_output=True
    )
    assert killed.returncode != 0  # SIGKILLed itself after SFT step 2
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert stages["synth"]["done"] and "sft" not in stages
    task_shards = {p: p.stat().st_mtime_ns for p in out.glob("synth/*/tasks/*.jsonl")}
    assert task_shards

    finished = subprocess.run(command, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "stage 1/6 synth: done earlier, skipped" in finished.stdout
    assert {p: p.stat().st_mtime_ns for p in task_shards} == task_shards  # synthesis not redone
    assert "held-out results" in finished.stdout
    assert "Loading weights" not in finished.stderr  # library bars go to the run's log
    assert "Loading weights: 100%" in (out / "run.log").read_text()
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert all(stages[s]["done"] for s in ("sft", "teachers", "distill", "eval", "report"))
    sft_steps = [
        json.loads(x)["step"] for x in (out / "sft" / "metrics.jsonl").read_text().splitlines()
    ]
    assert sft_steps == [1, 2, 3, 4]  # resumed from the step-2 checkpoint, not restarted
    assert (out / "report" / "report.html").exists()
    for label in ("base", "sft", "distilled"):
        assert (out / "eval" / label / "search-heldout" / "result.json").exists()
    # The recipe's instruction level reached synthesis and the held-out split alike.
    tasks = [json.loads(x) for p in out.glob("synth/instruction/tasks/*.jsonl") for x in p.open()]
    composed = [t for t in tasks if t["metadata"]["variant"] == "ifeval"]
    assert composed
    assert {len(t["verifiers"][0]["params"]["instruction_id_list"]) for t in composed} == {1}
    held = json.loads((out / "eval" / "sft" / "instruction-heldout" / "result.json").read_text())
    assert held["info"]["level"]["informative_only"] is True
    assert max(held["n_items"].values()) <= 3
