"""Stage 3 on-policy distillation: teacher routing and checks, score cache, real OPD runs of
every loss kind, exact resume after SIGKILL, and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoTokenizer
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Budgets, Message, Protocol, Task, TaskStore, TrajectoryStore
from longhorizon.distill.config import DistillConfig, TeacherSpec
from longhorizon.distill.opd import KILL_ENV, Distiller, run_distill
from longhorizon.distill.rollouts import domain_slots, minibatch_indices
from longhorizon.distill.scoring import ScoreCache, ScoreRequest, score_sequences
from longhorizon.distill.teachers import TeacherError, TeacherRegistry
from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.tool_caller import QUESTION
from longhorizon.training.metrics import read_metrics
from longhorizon.verifiers import verify_answer

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
    requests = [ScoreRequest(d, ids, positions) for d in ("arith", "maths", "arith")]
    cache = ScoreCache(tmp_path / "cache")
    scores = asyncio.run(score_sequences(registry, requests, top_k=4, cache=cache))
    direct = {d: registry[d].score_sync(ids, positions, 4) for d in ("arith", "maths")}
    # Batched and single forward passes may differ in the last float bits, not more.
    for got, want in ((scores[0], "arith"), (scores[2], "arith"), (scores[1], "maths")):
        assert got.positions.tolist() == direct[want].positions
        assert got.target_logprobs == pytest.approx(direct[want].target_logprobs, abs=1e-5)
        assert np.allclose(got.top_logprobs, direct[want].top_logprobs, atol=1e-5)
        assert got.top_ids.tolist() == direct[want].top_ids
    assert not np.allclose(scores[0].target_logprobs, scores[1].target_logprobs)  # two teachers
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # one entry per (teacher, ids)
    again = asyncio.run(score_sequences(registry, requests[:1], top_k=4, cache=cache))
    assert again[0].top_ids.tolist() == direct["arith"].top_ids
    # Arbitrary ids and the full vocabulary: one in-process pass, the same log-softmax.
    wanted = np.array([[5, -1], [7, 9]] + [[1, 2]] * (len(positions) - 2), dtype=np.int64)
    extra = ScoreRequest("arith", ids, positions, student_ids=wanted, full=True)
    (got,) = asyncio.run(score_sequences(registry, [extra], top_k=4, cache=cache))
    assert got.full_logprobs is not None and got.student_logprobs is not None
    assert got.student_logprobs[1].tolist() == got.full_logprobs[1, [7, 9]].tolist()
    assert got.student_logprobs[0, 1] == -np.inf  # padding id
    assert np.allclose(got.full_logprobs.max(-1), got.top_logprobs[:, 0])


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


def opd_fields(tmp_path: Path, **extra: object) -> dict[str, object]:
    """A small OPD run: 2 domains, 4 prompts per step, one episode at a time (deterministic)."""
    tasks = tmp_path / "tasks"
    if not tasks.exists():
        write_tasks(tasks)
    return {
        "model": "tiny-llama",
        "teachers": [
            {"domain": "arith", "model": "tiny-tool-caller"},
            {"domain": "maths", "model": "tiny-tool-caller"},
        ],
        "tasks": [str(tasks)],
        "output_dir": str(tmp_path / "run"),
        "steps": 3,
        "lr": 1e-3,
        "micro_batch_size": 3,
        "loss": {"k": 8},
        "rollout": {"prompts_per_step": 4, "temperature": 1.0, "concurrency": 1},
        "tensorboard": False,
        "num_threads": 1,
        **extra,
    }


def run_in_process(fields: dict[str, object]) -> Path:
    threads = torch.get_num_threads()
    try:
        return run_distill(DistillConfig.model_validate(fields), verify_answer)
    finally:
        torch.set_num_threads(threads)


def test_opd_run_trains_and_logs_per_domain(tmp_path: Path) -> None:
    final = run_in_process(opd_fields(tmp_path, minibatches=2))
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(r["updates"] == 2 for r in records)  # two optimizer steps per rollout batch
    assert set(records[0]["phase_seconds"]) == {"rollout", "score", "train"}
    assert set(records[0]["domains"]) == {"arith", "maths"}  # balanced prompts: both domains
    assert records[-1]["loss"] < records[0]["loss"]  # the student moves towards the teacher
    assert all(r["lr"] == pytest.approx(1e-3) and r["grad_norm"] > 0 for r in records)
    for r in records:
        for m in r["rollouts"].values():
            assert m["episodes"] == 2 and 0 <= m["truncation"] <= 1 and m["tool_calls"] >= 0
        for m in r["domains"].values():
            assert m["kl"] == pytest.approx(m["loss"]) and 0 <= m["coverage"] <= 1
    meta = json.loads((final / "longhorizon_distill.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert set(tokenizer.all_special_ids) <= set(meta["excluded_ids"])  # special ids: excluded
    assert (final / "config.json").exists() and (tmp_path / "run" / "config.yaml").exists()
    assert len(list((tmp_path / "run" / "teacher_cache").glob("*.npz"))) > 0
    stored = [t.id for t in TrajectoryStore(tmp_path / "run" / "rollouts")]
    assert len(stored) == len(set(stored)) == 12  # 3 steps x 4 episodes, each once


@pytest.mark.parametrize(
    "kind", ["sva", "full_rkl", "sampled_token", "student_topk", "union", "sva_tail"]
)
def test_every_loss_kind_runs_one_opd_step(tmp_path: Path, kind: str) -> None:
    fields = opd_fields(
        tmp_path,
        steps=1,
        loss={"k": 8, "kind": kind},
        rollout={"prompts_per_step": 2, "concurrency": 2, "max_tokens": 12, "max_turns": 1},
    )
    run_in_process(fields)
    (record,) = read_metrics(tmp_path / "run")
    assert record["loss"] is not None and np.isfinite(record["loss"]) and record["grad_norm"] > 0
    assert set(record["domains"]) == {"arith", "maths"}


def one_step_forward_dtypes(fields: dict[str, object]) -> tuple[Distiller, list[torch.dtype]]:
    """Run one OPD step; the dtypes of a student linear layer's outputs in its loss forward
    (the gradient-carrying ones: rollouts and scoring run without gradients)."""
    distiller = Distiller(DistillConfig.model_validate(fields), verify_answer)
    seen: list[torch.dtype] = []
    threads = torch.get_num_threads()
    try:
        distiller.setup()
        layer = distiller.student.model.layers[0].mlp.down_proj
        layer.register_forward_hook(
            lambda _m, _a, out: seen.append(out.dtype) if out.requires_grad else None
        )
        distiller.train()
    finally:
        distiller.cleanup()
        torch.set_num_threads(threads)
    return distiller, seen


def test_bfloat16_autocast_runs_the_student_forward_over_float32_weights(tmp_path: Path) -> None:
    short = {"prompts_per_step": 2, "concurrency": 2, "max_tokens": 12, "max_turns": 1}
    losses = {}
    for dtype in ("auto", "bfloat16"):
        fields = opd_fields(tmp_path / dtype, steps=1, dtype=dtype, rollout=short)
        distiller, seen = one_step_forward_dtypes(fields)
        assert next(distiller.student.parameters()).dtype == torch.float32  # master weights
        want = torch.bfloat16 if dtype == "bfloat16" else torch.float32  # auto on CPU: float32
        assert distiller.autocast == (torch.bfloat16 if dtype == "bfloat16" else None)
        assert seen and set(seen) == {want}
        (record,) = read_metrics(tmp_path / dtype / "run")
        assert np.isfinite(record["loss"]) and record["grad_norm"] > 0
        losses[dtype] = record["loss"]
    # The same rollouts and teacher scores (float32 snapshot, same seed): the loss moves by
    # bf16 rounding only.
    assert losses["bfloat16"] != losses["auto"]
    assert losses["bfloat16"] == pytest.approx(losses["auto"], rel=1e-3)  # 3e-5 measured


def test_dtype_enters_the_dump_only_when_set(tmp_path: Path) -> None:
    default = DistillConfig.model_validate(opd_fields(tmp_path))
    assert "dtype" not in default.model_dump() and "dtype" not in yaml.safe_load(default.to_yaml())
    auto = DistillConfig.model_validate(opd_fields(tmp_path, dtype="auto"))
    assert auto.model_dump() == default.model_dump() and auto.fingerprint() == default.fingerprint()
    bf16 = DistillConfig.model_validate(opd_fields(tmp_path, dtype="bfloat16"))
    assert bf16.model_dump()["dtype"] == yaml.safe_load(bf16.to_yaml())["dtype"] == "bfloat16"
    assert bf16.fingerprint() != default.fingerprint()  # a checkpoint resumes in its precision
    with pytest.raises(ValueError, match="dtype"):
        DistillConfig.model_validate(opd_fields(tmp_path, dtype="float16"))


def test_a_served_teacher_that_cannot_score_ids_fails_at_start(tool_caller_path: str) -> None:
    served = OpenAIBackend("http://127.0.0.1:9/v1", model="t", tokenizer=tool_caller_path)
    registry = TeacherRegistry({"arith": served})
    tokenizer = AutoTokenizer.from_pretrained(tool_caller_path)
    registry.check({"arith"}, tokenizer, "sva_tail")  # the teacher's own top-k is enough
    for kind in ("full_rkl", "student_topk", "union"):
        with pytest.raises(TeacherError, match=f"loss kind '{kind}' needs .* is served"):
            registry.check({"arith"}, tokenizer, kind)


def distill_cli(config: Path, *overrides: str) -> list[str]:
    sets = [x for o in overrides for x in ("--set", o)]
    return [sys.executable, "-m", "longhorizon.cli.main", "distill", "--config", str(config), *sets]


# The run as its own process, verified by exact match (the CLI verifies with the registered
# domains' `verify`, and these tasks' domains are made up).
DISTILL_SCRIPT = (
    "import json, sys\n"
    "from longhorizon.distill.config import DistillConfig\n"
    "from longhorizon.distill.opd import run_distill\n"
    "from longhorizon.verifiers import verify_answer\n"
    "run_distill(DistillConfig.model_validate(json.load(open(sys.argv[1]))), verify_answer)\n"
)


def launch(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400", **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=400)


def test_resume_after_sigkill_reproduces_the_loss_curve_exactly(tmp_path: Path) -> None:
    fields = opd_fields(tmp_path, steps=4, save_every=2, minibatches=2)
    baseline = run_in_process({**fields, "output_dir": str(tmp_path / "baseline")})
    assert baseline.exists()
    config = tmp_path / "distill.yaml"
    config.write_text(json.dumps(fields))  # JSON is YAML
    script = [sys.executable, "-c", DISTILL_SCRIPT, str(config)]
    killed = launch(script, {KILL_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]
    resumed = launch(script)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-00000002" in resumed.stdout
    got, want = read_metrics(tmp_path / "run"), read_metrics(tmp_path / "baseline")
    assert [r["step"] for r in got] == [1, 2, 3, 4]  # no duplicated step
    assert [r["loss"] for r in got] == [r["loss"] for r in want]  # bit for bit
    assert [r["domains"] for r in got] == [r["domains"] for r in want]
    stored = [t.id for t in TrajectoryStore(tmp_path / "run" / "rollouts")]
    assert len(stored) == len(set(stored)) == 16  # step 3's episodes were reused, not rerun


def test_distill_cli_dry_run_prints_the_resolved_config(tmp_path: Path) -> None:
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump(opd_fields(tmp_path)))
    result = CliRunner().invoke(
        app, ["distill", "--config", str(config), "--dry-run", "--set", "loss.kind=sva_tail"]
    )
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["loss"]["kind"] == "sva_tail" and printed["micro_batch_size"] == 3
    assert printed["max_grad_norm"] == 1.0 and printed["loss"]["exclude_special"] is True
    assert not (tmp_path / "run").exists()
    bad = CliRunner().invoke(app, ["distill", "--config", str(config), "--set", "micro_batch=2"])
    assert bad.exit_code == 2 and "micro_batch" in bad.output


def test_distill_cli_reports_a_missing_teacher(tmp_path: Path) -> None:
    fields = opd_fields(tmp_path, steps=1)
    fields["teachers"] = [{"domain": "arith", "model": "tiny-tool-caller"}]
    path = tmp_path / "distill.yaml"
    path.write_text(yaml.safe_dump(fields))
    result = CliRunner().invoke(app, ["distill", "--config", str(path)])
    assert result.exit_code == 2
    assert "no teacher for domain(s) ['maths']" in result.output
    shutil.rmtree(tmp_path / "run", ignore_errors=True)


def test_prompt_split_follows_domain_weights() -> None:
    even = domain_slots(["instruction", "search"], 6, None)
    assert even == ["instruction", "search"] * 3
    weighted = domain_slots(["instruction", "search"], 24, {"instruction": 3})
    assert (weighted.count("instruction"), weighted.count("search")) == (18, 6)
    # A tiny weight still gets its domain one prompt per step when there is room.
    assert sorted(set(domain_slots(["a", "b", "c"], 6, {"a": 100}))) == ["a", "b", "c"]


def test_minibatches_use_every_sample_once_per_epoch() -> None:
    steps = minibatch_indices(7, 3, 2, random.Random(0))
    assert [len(s) for s in steps] == [3, 2, 2, 3, 2, 2]
    assert sorted(steps[0] + steps[1] + steps[2]) == list(range(7))
    assert sorted(steps[3] + steps[4] + steps[5]) == list(range(7))
    assert steps[:3] != steps[3:]  # each epoch reshuffles
    assert minibatch_indices(2, 4, 1, random.Random(0)) in ([[0], [1]], [[1], [0]])


def test_domain_loss_weights_need_the_domain_aggregation(tmp_path: Path) -> None:
    base = {"model": "s", "teachers": [], "tasks": [], "output_dir": str(tmp_path)}
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


def test_config_is_frozen_and_checkpoints_fall_on_refresh_steps(tmp_path: Path) -> None:
    cfg = DistillConfig.model_validate(opd_fields(tmp_path, save_every=10))
    with pytest.raises(ValueError, match="frozen"):
        cfg.steps = 5  # type: ignore[misc]
    assert cfg.checkpoint_every == 10 and cfg.final_path == tmp_path / "run" / "final"
    four = DistillConfig.model_validate(
        opd_fields(tmp_path, save_every=10, rollout={"refresh_every": 4})
    )
    assert four.checkpoint_every == 12  # rounded up to a refresh step
    assert four.fingerprint() != cfg.fingerprint()
    assert cfg.model_copy(update={"save_every": 3}).fingerprint() == cfg.fingerprint()
