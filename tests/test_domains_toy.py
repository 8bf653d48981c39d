"""A domain is one folder: the toy "addition" domain of `tests/toy_domain/`, registered from
the test alone, goes through synth -> SFT -> teachers -> OPD -> eval -> report."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from longhorizon.core import Message, Trajectory, VerifierSpec
from longhorizon.core.provenance import RunProvenance
from longhorizon.domains import UnknownVerifierError, registry, verify
from longhorizon.domains.spec import DomainSpec
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.runner import bench_names, evaluate_agent
from longhorizon.harness import ScriptedAgent
from longhorizon.models.registry import resolve_model
from longhorizon.models.render import ChatRenderer
from longhorizon.pipeline.recipe import Recipe
from longhorizon.pipeline.run import run_pipeline
from tests.toy_domain import SPEC, AdditionLevel, propose

TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "seed": 0,
}


@pytest.fixture
def toy() -> Iterator[DomainSpec[AdditionLevel]]:
    registry.register(SPEC)
    yield SPEC
    registry.unregister(SPEC.name)


def test_the_toy_domain_registers_and_leaves(toy: DomainSpec[AdditionLevel]) -> None:
    assert "addition" in registry.names() and "addition-heldout" in bench_names()
    registry.unregister("addition")
    assert "addition-heldout" not in bench_names()
    registry.register(toy)


def test_the_spec_guards_the_toy_verifier(toy: DomainSpec[AdditionLevel]) -> None:
    task = propose(7, AdditionLevel())
    done = Trajectory(
        id="t",
        task_id=task.id,
        domain=task.domain,
        final_answer=task.answer,
        provenance=RunProvenance(model="m", backend="scripted"),
    )
    assert [(v.verifier, v.passed) for v in verify(task, done)] == [("sum", True)]
    odd = task.model_copy(update={"verifiers": [VerifierSpec(name="exact_match")]})
    with pytest.raises(UnknownVerifierError, match=r"for the addition domain; it knows: sum$"):
        verify(odd, done)


def test_the_heldout_bench_scores_the_toy_expert(
    toy: DomainSpec[AdditionLevel], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    renderer = ChatRenderer(AutoTokenizer.from_pretrained(resolve_model("tiny-llama")))

    def expert(messages: list[Message]) -> str:
        question = next(m.content or "" for m in messages if m.role == "user")
        a, b = (int(x) for x in question.removeprefix("What is ").split("?")[0].split(" + "))
        return f"<answer>{a + b}</answer>"

    options = EvalOptions(limit=5, levels={"addition": {"max_operand": 9}}, show_progress=False)
    agent = ScriptedAgent(renderer, expert, "adder")
    result = asyncio.run(evaluate_agent(agent, "adder", ["addition-heldout"], 1, tmp_path, options))
    held = result["addition-heldout"]
    assert (held.pooled.mean, held.pooled.n) == (1.0, 5)
    assert held.info["domain"] == "addition" and held.info["level"] == {"max_operand": 9}
    assert held.info["heldout_seed"] == 1_000_000
    first = propose(1_000_000, AdditionLevel(max_operand=9))
    items = (tmp_path / "addition-heldout" / "items-seed0.jsonl").read_text().splitlines()
    assert json.loads(items[0])["item_id"] == first.id


def test_the_toy_domain_runs_the_whole_pipeline(
    toy: DomainSpec[AdditionLevel], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    recipe = Recipe.model_validate(
        {
            "name": "toy",
            "out": str(out),
            "seed": 0,
            "student": {"tiny": TINY},
            "synth": {"domains": {"addition": 6}, "levels": {"addition": {"max_operand": 9}}},
            "sft": {"max_len": 256, "batch_size": 2, "max_steps": 2, "num_threads": 1},
            "teachers": {"max_steps": 1},
            "distill": {
                "steps": 1,
                "loss": {"kind": "sva", "k": 4},
                "rollout": {
                    "prompts_per_step": 2,
                    "concurrency": 2,
                    "max_turns": 1,
                    "max_tokens": 8,
                },
            },
            "eval": {"seeds": 1, "limit": 3, "max_turns": 1, "max_tokens": 8, "batch_size": 3},
        }
    )
    assert run_pipeline(recipe) == out
    synth = json.loads((out / "synth" / "addition" / "synth_report.json").read_text())
    assert (synth["domain"], synth["accepted"]) == ("addition", 6)
    stages = json.loads((out / "stages.json").read_text())["stages"]
    assert all(stages[s]["done"] for s in ("synth", "sft", "teachers", "distill", "eval", "report"))
    for label in ("base", "sft", "teacher-addition", "distilled"):
        held = json.loads((out / "eval" / label / "addition-heldout" / "result.json").read_text())
        audit = held["info"]["audit"]  # 100 sums in all: some held-out draws repeat training
        assert audit["generated"] == 3 and held["n_items"] == {"0": audit["kept"]}
        assert audit["train_tasks"] == 6 and held["info"]["level"] == {"max_operand": 9}
    report = (out / "report" / "report.md").read_text()
    row = next(line for line in report.splitlines() if "addition-heldout" in line)
    assert row.startswith("| addition | addition-heldout |"), row


def _cli(args: list[str], plugins: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "LONGHORIZON_DOMAINS": plugins, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "longhorizon.cli.main", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_a_plugin_domain_is_usable_from_the_cli(tmp_path: Path) -> None:
    """LONGHORIZON_DOMAINS registers a domain from outside the package for every command."""
    out = tmp_path / "synth"
    done = _cli(
        ["synth", "--domain", "addition", "--n", "3", "--out", str(out)],
        "tests.toy_domain",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    tasks = [json.loads(line) for f in sorted((out / "tasks").glob("*.jsonl")) for line in f.open()]
    assert len(tasks) == 3 and {t["domain"] for t in tasks} == {"addition"}
    bad = _cli(
        ["synth", "--domain", "addition", "--n", "1", "--out", str(out)], "no_such_module", tmp_path
    )
    assert bad.returncode != 0
    assert "plug-in domain 'no_such_module' (LONGHORIZON_DOMAINS" in bad.stderr
    assert "No module named 'no_such_module'" in bad.stderr
