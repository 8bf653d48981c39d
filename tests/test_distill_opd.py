"""Stage 3 on-policy distillation: teacher routing and checks, score cache, a real OPD run."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from transformers import AutoTokenizer
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Budgets, Message, Protocol, Task, TaskStore
from longhorizon.distill.config import DistillLossConfig
from longhorizon.distill.opd import DistillConfig, RolloutConfig, run_distill
from longhorizon.distill.scoring import ScoreCache, score_sequences
from longhorizon.distill.teachers import TeacherError, TeacherRegistry, TeacherSpec
from longhorizon.models.hf import HFBackend
from longhorizon.models.tool_caller import QUESTION

PROTOCOL = Protocol(
    tools=("calculator",),
    budgets=Budgets(max_turns=2, max_response_tokens=16, max_context_tokens=1024),
)


def write_tasks(root: Path) -> Path:
    with TaskStore(root) as store:
        for domain in ("arith", "maths"):
            for i in range(3):
                store.add(
                    Task(
                        id=f"{domain}-{i}",
                        domain=domain,
                        instruction=f"{QUESTION} ({domain} {i})",
                        answer="5",
                        protocol=PROTOCOL,
                    )
                )
    return root


@pytest.fixture(scope="module")
def registry(tiny_llama_path: str, tool_caller_path: str) -> TeacherRegistry:
    return TeacherRegistry(
        {
            "arith": HFBackend.from_pretrained(tool_caller_path),
            "maths": HFBackend.from_pretrained(tiny_llama_path),
        }
    )


def test_each_sample_is_scored_by_its_own_domains_teacher(
    registry: TeacherRegistry, tmp_path: Path
) -> None:
    ids = [*registry["arith"].renderer.prompt_ids([Message(role="user", content="hi")]), 504, 3575]
    positions = list(range(1, len(ids)))
    requests = [("arith", ids, positions), ("maths", ids, positions), ("arith", ids, positions)]
    cache = ScoreCache(tmp_path / "cache")
    scores = asyncio.run(score_sequences(registry, requests, top_k=4, cache=cache))
    direct = {d: registry[d].score_sync(ids, positions, 4) for d in ("arith", "maths")}
    # Batched and single forward passes may differ in the last float bits, not more.
    for got, want in ((scores[0], "arith"), (scores[2], "arith"), (scores[1], "maths")):
        assert got.positions == direct[want].positions
        assert got.target_logprobs == pytest.approx(direct[want].target_logprobs, abs=1e-5)
        assert np.allclose(got.top_logprobs, direct[want].top_logprobs, atol=1e-5)
    assert scores[0].target_logprobs != scores[1].target_logprobs  # two different teachers
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # one entry per (teacher, ids)
    again = asyncio.run(score_sequences(registry, requests[:1], top_k=4, cache=cache))
    assert again[0].top_ids == direct["arith"].top_ids


def test_missing_teacher_and_foreign_tokenizer_fail_at_start(
    registry: TeacherRegistry, tiny_llama_path: str, tmp_path: Path
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    registry.check({"arith", "maths"}, tokenizer)
    with pytest.raises(TeacherError, match=r"no teacher for domain\(s\) \['search'\]"):
        registry.check({"arith", "search"}, tokenizer)
    other = AutoTokenizer.from_pretrained(tiny_llama_path)
    other.add_tokens(["<extra_tool_token>"])
    with pytest.raises(TeacherError, match="different tokenizer"):
        registry.check({"arith"}, other)
    with pytest.raises(TeacherError, match="more than one teacher"):
        TeacherRegistry.open(
            [TeacherSpec(domain="a", model="x"), TeacherSpec(domain="a", model="y")]
        )


def test_opd_run_trains_and_logs_per_domain(tmp_path: Path) -> None:
    config = DistillConfig(
        student="tiny-llama",
        teachers=[
            TeacherSpec(domain="arith", model="tiny-tool-caller"),
            TeacherSpec(domain="maths", model="tiny-tool-caller"),
        ],
        tasks=[write_tasks(tmp_path / "tasks")],
        out=tmp_path / "run",
        steps=3,
        lr=1e-3,
        loss=DistillLossConfig(k=8),
        minibatches=2,
        rollout=RolloutConfig(prompts_per_step=4, temperature=1.0, concurrency=4),
    )
    final = run_distill(config)
    records = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(r["updates"] == 2 for r in records)  # two optimizer steps per rollout batch
    assert set(records[0]["phase_seconds"]) == {"rollout", "score", "train"}
    assert set(records[0]["domains"]) == {"arith", "maths"}  # balanced prompts: both domains
    assert records[-1]["loss"] < records[0]["loss"]  # the student moves towards the teacher
    for r in records:
        for m in r["rollouts"].values():
            assert m["episodes"] == 2 and 0 <= m["truncation"] <= 1 and m["tool_calls"] >= 0
        for m in r["domains"].values():
            assert m["kl"] == pytest.approx(m["loss"]) and 0 <= m["coverage"] <= 1
    assert (final / "config.json").exists()
    assert len(list((tmp_path / "run" / "teacher_cache").glob("*.npz"))) > 0


def test_distill_cli_reports_a_missing_teacher(tmp_path: Path) -> None:
    config = {
        "student": "tiny-llama",
        "teachers": [{"domain": "arith", "model": "tiny-tool-caller"}],
        "tasks": [str(write_tasks(tmp_path / "tasks"))],
        "out": str(tmp_path / "run"),
        "steps": 1,
    }
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(app, ["distill", "--config", str(path)])
    assert result.exit_code == 2
    assert "no teacher for domain(s) ['maths']" in result.output
    shutil.rmtree(tmp_path / "run", ignore_errors=True)


def test_prompt_split_follows_domain_weights() -> None:
    from longhorizon.distill.opd import domain_slots

    even = domain_slots(["instruction", "search"], 6, None)
    assert even == ["instruction", "search"] * 3
    weighted = domain_slots(["instruction", "search"], 24, {"instruction": 3})
    assert (weighted.count("instruction"), weighted.count("search")) == (18, 6)
    # A tiny weight still gets its domain one prompt per step when there is room.
    assert sorted(set(domain_slots(["a", "b", "c"], 6, {"a": 100}))) == ["a", "b", "c"]


def test_minibatches_use_every_sample_once_per_epoch() -> None:
    from longhorizon.distill.opd import minibatch_indices

    steps = minibatch_indices(7, 3, 2, random.Random(0))
    assert [len(s) for s in steps] == [3, 2, 2, 3, 2, 2]
    assert sorted(steps[0] + steps[1] + steps[2]) == list(range(7))
    assert sorted(steps[3] + steps[4] + steps[5]) == list(range(7))
    assert steps[:3] != steps[3:]  # each epoch reshuffles
    assert minibatch_indices(2, 4, 1, random.Random(0)) in ([[0], [1]], [[1], [0]])


def test_domain_loss_weights_need_the_domain_aggregation(tmp_path: Path) -> None:
    base = {"student": "s", "teachers": [], "tasks": [], "out": str(tmp_path)}
    ok = DistillConfig.model_validate({**base, "domain_loss_weights": {"search": 0.25}})
    assert ok.domain_loss_weights == {"search": 0.25}
    with pytest.raises(ValueError, match=r"needs loss\.aggregation: domain"):
        DistillConfig.model_validate(
            {**base, "domain_loss_weights": {"a": 1}, "loss": {"aggregation": "token"}}
        )
    with pytest.raises(ValueError, match="must be >= 0"):
        DistillConfig.model_validate({**base, "domain_loss_weights": {"a": -1}})


def test_rollout_budget_overrides_reach_the_task() -> None:
    task = Task(id="t", domain="d", instruction="q", protocol=Protocol(budgets=Budgets()))
    tight = task.with_budgets(max_turns=2, max_response_tokens=64)
    assert (tight.protocol.budgets.max_turns, tight.protocol.budgets.max_response_tokens) == (2, 64)
    assert tight.protocol.budgets.max_context_tokens == Budgets().max_context_tokens
    assert task.with_budgets() == task
