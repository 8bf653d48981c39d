"""Stage 2 GRPO runs: a bandit the policy learns, multi-turn tool rollouts with verifier
rewards and per-step metrics, exact resume after SIGKILL, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import (
    Budgets,
    Protocol,
    Task,
    TaskStore,
    Trajectory,
    TrajectoryStore,
    Verdict,
)
from longhorizon.distill.rollouts import POLICY_VERSION
from longhorizon.models.tool_caller import QUESTION
from longhorizon.rl import RLConfig, run_rl
from longhorizon.rl.grpo import KILL_ENV, GRPOTrainer
from longhorizon.training.metrics import read_metrics
from longhorizon.verifiers import verify_answer

TARGET = 39428  # '{"': tiny-tool-caller's second choice (p ~ 0.02) after "Say one word."


def bandit_verify(task: Task, traj: Trajectory) -> list[Verdict]:
    """Reward 1 for a first generated token equal to TARGET."""
    first = traj.calls[0].completion_ids[:1] if traj.calls else []
    return [Verdict(verifier="bandit", passed=first == [TARGET])]


def write_tasks(root: Path, tasks: list[Task]) -> Path:
    with TaskStore(root) as store:
        for t in tasks:
            store.add(t)
    return root


def run_in_process(fields: dict[str, object], verify=verify_answer, kinds=None) -> Path:  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    try:
        return run_rl(RLConfig.model_validate(fields), verify, None, kinds)
    finally:
        torch.set_num_threads(threads)


def bandit_task(max_response_tokens: int) -> Task:
    """One single-turn prompt with no tools: the bandit whose reward is a token."""
    budgets = Budgets(max_turns=1, max_response_tokens=max_response_tokens, max_context_tokens=1024)
    return Task(
        id="say",
        domain="bandit",
        instruction="Say one word.",
        answer="",
        protocol=Protocol(tools=(), budgets=budgets),
    )


def bandit_fields(tmp_path: Path, max_response_tokens: int) -> dict[str, Any]:
    """A GRPO run on the bandit: 2 prompts x 8 rollouts a step, lr 1e-2, no KL."""
    task = bandit_task(max_response_tokens)
    return {
        "model": "tiny-tool-caller",
        "tasks": [str(write_tasks(tmp_path / "tasks", [task]))],
        "output_dir": str(tmp_path / "run"),
        "steps": 4,
        "lr": 1e-2,
        "rollout": {"prompts_per_step": 2, "group_size": 8, "max_tries": 4},
        # every rollout that hits the budget is scored, not masked (and counted)
        "objective": {"overlong": "keep", "kl_coef": 0.0},
        "micro_batch_size": 16,
        "tensorboard": False,
        "num_threads": 1,
    }


def test_bandit_policy_learns_to_emit_the_rewarded_token(tmp_path: Path) -> None:
    run_in_process(bandit_fields(tmp_path, max_response_tokens=1), bandit_verify)
    records = read_metrics(tmp_path / "run")
    rewards = [r["reward_mean"] for r in records]
    assert rewards[0] < 0.1  # the starting policy emits it ~2% of the time
    first = next(i + 1 for i, r in enumerate(rewards) if r >= 0.9)
    assert first <= 3, rewards  # 0.018 -> 0.375 -> 1.0 with this seed
    assert records[0]["groups"]["rounds"] > 1  # all-zero groups were dropped and refilled
    assert 0 < records[0]["groups"]["filtered_share"] < 1
    assert records[0]["groups"]["truncated"] == 8 * records[0]["groups"]["rolled"]
    assert records[0]["loss"] is not None and records[0]["grad_norm"] > 0


def one_step_forward_dtypes(
    fields: dict[str, object],
) -> tuple[GRPOTrainer, list[torch.dtype], list[torch.dtype]]:
    """Run one GRPO step; the output dtypes of a policy linear layer in its loss forward (the
    gradient-carrying ones: rollouts run without gradients) and of the reference's."""
    trainer = GRPOTrainer(RLConfig.model_validate(fields), verify_answer)
    policy: list[torch.dtype] = []
    reference: list[torch.dtype] = []
    threads = torch.get_num_threads()
    try:
        trainer.setup()
        assert trainer.reference is not None
        trainer.policy.model.layers[0].mlp.down_proj.register_forward_hook(
            lambda _m, _a, out: policy.append(out.dtype) if out.requires_grad else None
        )
        trainer.reference.model.layers[0].mlp.down_proj.register_forward_hook(
            lambda _m, _a, out: reference.append(out.dtype)
        )
        trainer.train()
    finally:
        trainer.cleanup()
        torch.set_num_threads(threads)
    return trainer, policy, reference


def test_bfloat16_autocast_runs_policy_and_reference_over_float32_weights(tmp_path: Path) -> None:
    task = bandit_task(max_response_tokens=4)
    tasks = str(write_tasks(tmp_path / "tasks", [task]))
    losses = {}
    for dtype in ("auto", "bfloat16"):
        fields = {
            "model": "tiny-tool-caller",
            "dtype": dtype,
            "tasks": [tasks],
            "output_dir": str(tmp_path / dtype),
            "steps": 1,
            # every group kept: one update (rewards all 0 here: the k3 KL and entropy terms)
            "rollout": {"prompts_per_step": 1, "group_size": 4, "dynamic_sampling": False},
            "objective": {"overlong": "keep"},
            "tensorboard": False,
            "num_threads": 1,
        }
        trainer, policy, reference = one_step_forward_dtypes(fields)
        assert next(trainer.policy.parameters()).dtype == torch.float32  # master weights
        assert trainer.autocast == (torch.bfloat16 if dtype == "bfloat16" else None)
        want = torch.bfloat16 if dtype == "bfloat16" else torch.float32  # auto on CPU: float32
        assert policy and set(policy) == {want}
        assert reference and set(reference) == {want}
        (record,) = read_metrics(tmp_path / dtype)
        assert record["loss"] is not None and torch.isfinite(torch.tensor(record["loss"]))
        assert record["grad_norm"] > 0
        # the policy and its reference (equal weights at step 0) ran in the same precision
        assert record["domains"]["bandit"]["kl"] == 0.0
        losses[dtype] = record["loss"]
    # The same rollouts (float32 snapshot, same seed): the loss moves by bf16 rounding only.
    assert losses["bfloat16"] != losses["auto"]
    assert losses["bfloat16"] == pytest.approx(losses["auto"], rel=0.05)  # 0.7% measured


def test_dtype_enters_the_dump_only_when_set(tmp_path: Path) -> None:
    default = RLConfig.model_validate(tool_fields(tmp_path))
    assert "dtype" not in default.model_dump() and "dtype" not in yaml.safe_load(default.to_yaml())
    auto = RLConfig.model_validate(tool_fields(tmp_path, dtype="auto"))
    assert auto.model_dump() == default.model_dump() and auto.fingerprint() == default.fingerprint()
    bf16 = RLConfig.model_validate(tool_fields(tmp_path, dtype="bfloat16"))
    assert bf16.model_dump()["dtype"] == yaml.safe_load(bf16.to_yaml())["dtype"] == "bfloat16"
    assert bf16.fingerprint() != default.fingerprint()  # a checkpoint resumes in its precision


def tool_fields(tmp_path: Path, **extra: object) -> dict[str, object]:
    protocol = Protocol(
        tools=("calculator",),
        budgets=Budgets(max_turns=2, max_response_tokens=48, max_context_tokens=1024),
    )
    tasks = [
        Task(
            id=f"{d}-{i}",
            domain=d,
            instruction=f"{QUESTION} ({d} {i})",
            answer="5",
            protocol=protocol,
        )
        for d in ("arith", "maths")
        for i in range(2)
    ]
    root = tmp_path / "tasks"
    if not root.exists():
        write_tasks(root, tasks)
    return {
        "model": "tiny-tool-caller",
        "tasks": [str(root)],
        "output_dir": str(tmp_path / "run"),
        "steps": 3,
        "lr": 1e-3,
        "rollout": {"prompts_per_step": 2, "group_size": 3, "max_tries": 2, "concurrency": 1},
        "objective": {"overlong": "penalise", "overlong_penalty": -0.5},
        "micro_batch_size": 3,
        "save_every": 2,
        "tensorboard": False,
        "num_threads": 1,
        **extra,
    }


RL_SCRIPT = (
    "import json, sys\n"
    "from longhorizon.rl import RLConfig, run_rl\n"
    "from longhorizon.verifiers import verify_answer\n"
    "run_rl(RLConfig.model_validate(json.load(open(sys.argv[1]))), verify_answer)\n"
)


def launch(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400", **(env or {})}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=400)


def test_tool_rollouts_train_and_resume_after_sigkill_exactly(tmp_path: Path) -> None:
    fields = tool_fields(tmp_path)
    final = run_in_process({**fields, "output_dir": str(tmp_path / "baseline")})
    want = read_metrics(tmp_path / "baseline")
    assert [r["step"] for r in want] == [1, 2, 3]
    assert any(r["loss"] is not None for r in want)  # some groups had mixed outcomes
    multi_turn = [
        t for t in TrajectoryStore(tmp_path / "baseline" / "rollouts") if t.usage.model_calls == 2
    ]
    assert multi_turn  # a tool call, its observation, a second turn: one training sequence
    (seq,) = multi_turn[0].token_sequences()
    second = multi_turn[0].calls[1]
    observation = len(second.new_prompt_ids)  # the tool's output and the next turn's header
    assert seq.loss_mask[-len(second.completion_ids) - observation :] == [0] * observation + [
        1
    ] * len(second.completion_ids)
    for r in want:
        assert set(r["phase_seconds"]) == {"rollout", "train"}
        for m in r["domains"].values():
            assert m["kl"] >= 0 and m["entropy"] > 0 and 0 <= m["clip_low"] <= 1
            assert abs(m["engine_kl"]) < 1e-3  # the snapshot is the policy: same numbers
    meta = json.loads((final / "longhorizon_rl.json").read_text())
    assert meta["algorithm"] == "grpo" and meta["steps"] == 3

    config = tmp_path / "rl.yaml"
    config.write_text(json.dumps(fields))  # JSON is YAML
    script = [sys.executable, "-c", RL_SCRIPT, str(config)]
    killed = launch(script, {KILL_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [r["step"] for r in read_metrics(tmp_path / "run")] == [1, 2, 3]
    resumed = launch(script)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-00000002" in resumed.stdout
    got = read_metrics(tmp_path / "run")
    assert [r["step"] for r in got] == [1, 2, 3]  # no duplicated step
    for key in ("loss", "grad_norm", "reward_mean", "groups", "domains"):
        assert [r.get(key) for r in got] == [r.get(key) for r in want], key  # bit for bit
    stored = [t.id for t in TrajectoryStore(tmp_path / "run" / "rollouts")]
    baseline = [t.id for t in TrajectoryStore(tmp_path / "baseline" / "rollouts")]
    assert sorted(stored) == sorted(baseline)  # step 3's episodes were reused, not rerun


def test_streamed_first_rounds_are_sampled_one_version_behind(
    tmp_path: Path, tool_caller_path: str
) -> None:
    """`rollout.max_staleness: 1`: each step's first round runs during the previous update on
    the policy from before it (re-derived from the stored episodes' logprobs); its refills
    run on the step's own policy."""
    from tests.test_distill_staleness import SAME_WEIGHTS_KL, sampled_kl

    rollout = {"prompts_per_step": 2, "group_size": 3, "max_tries": 2, "concurrency": 1}
    rollout |= {"max_staleness": 1}
    run_in_process(tool_fields(tmp_path, rollout=rollout, save_every=1, keep_checkpoints=3))
    records = read_metrics(tmp_path / "run")
    assert [r["engine"]["policy_version"] for r in records] == [0, 0, 1]
    assert [r["engine"]["staleness"] for r in records] == [0, 1, 1]
    assert set(records[0]["phase_seconds"]) == {"rollout", "train", "overlap_wait"}
    rounds: dict[tuple[int, bool], list[Trajectory]] = {}
    for traj in TrajectoryStore(tmp_path / "run" / "rollouts"):
        step, index = traj.id.split("@step")[1].split("#")[0].split(".")
        first = int(index) < rollout["prompts_per_step"]
        rounds.setdefault((int(step), first), []).append(traj)
    versions = {k: {t.metadata[POLICY_VERSION] for t in ts} for k, ts in rounds.items()}
    assert {k: v for k, v in versions.items() if k[1]} == {
        (0, True): {0},
        (1, True): {0},
        (2, True): {1},
    }
    assert all(v == {k[0]} for k, v in versions.items() if not k[1])  # refills: the step's own
    # Step 2's first round was sampled by the starting policy, step 3's by the policy after
    # one update (checkpoint step-1), not after two.
    assert abs(sampled_kl(None, tool_caller_path, rounds[1, True])) < SAME_WEIGHTS_KL
    checkpoints = tmp_path / "run" / "checkpoints"
    one = torch.load(checkpoints / "step-00000001" / "model.pt")
    assert abs(sampled_kl(one, tool_caller_path, rounds[2, True])) < SAME_WEIGHTS_KL
    two = torch.load(checkpoints / "step-00000002" / "model.pt")
    assert abs(sampled_kl(two, tool_caller_path, rounds[2, True])) > SAME_WEIGHTS_KL


def test_rl_cli_dry_run_prints_the_resolved_config(tmp_path: Path) -> None:
    config = tmp_path / "rl.yaml"
    config.write_text(yaml.safe_dump(tool_fields(tmp_path)))
    args = ["rl", "--config", str(config), "--set", "objective.clip_high=0.3", "--dry-run"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["objective"]["clip_high"] == 0.3 and printed["objective"]["clip_low"] == 0.2
    assert printed["objective"]["kl_coef"] == 0.001 and printed["lr"] == 1e-3
    assert not (tmp_path / "run").exists()
    bad = CliRunner().invoke(app, ["rl", "--config", str(config), "--set", "rollout.group_size=1"])
    assert bad.exit_code == 2 and "group_size" in bad.output


@pytest.mark.parametrize("dynamic", [True, False])
def test_dynamic_sampling_switch(tmp_path: Path, dynamic: bool) -> None:
    """Without dynamic sampling every group is kept after one round (all-equal ones included)."""
    fields = tool_fields(
        tmp_path,
        steps=1,
        rollout={
            "prompts_per_step": 2,
            "group_size": 2,
            "max_tries": 3,
            "dynamic_sampling": dynamic,
            "max_tokens": 4,  # too short to finish: every rollout is truncated and penalised
        },
        # truncated IS against the trainer's logprobs (the same numbers here: weights 1)
        objective={"overlong": "penalise", "overlong_penalty": -0.5, "tis_cap": 2.0},
    )
    run_in_process(fields)
    (record,) = read_metrics(tmp_path / "run")
    groups = record["groups"]
    assert groups["truncated"] == 2 * groups["rolled"]
    assert record["reward_mean"] == -0.5  # penalised, and recorded as such
    if dynamic:  # all-equal groups: dropped, refilled up to the cap, then no update
        assert groups == {**groups, "rolled": 6, "kept": 0, "rounds": 3, "filtered_share": 1.0}
        assert record["loss"] is None
    else:
        assert groups == {**groups, "rolled": 2, "kept": 2, "rounds": 1, "filtered_share": 0.0}
        assert record["loss"] is not None  # zero advantages: only the KL and entropy terms
        for m in record["domains"].values():
            assert m["clip_low"] == m["clip_high"] == 0.0 and abs(m["engine_kl"]) < 1e-3


def test_prompt_prefilter_keeps_mixed_outcomes_and_persists(tmp_path: Path) -> None:
    rollout = {"prompts_per_step": 2, "group_size": 2, "max_tries": 1, "prefilter_attempts": 3}
    run_in_process(tool_fields(tmp_path, steps=1, rollout=rollout))
    attempts: dict[str, list[bool]] = {}
    for t in TrajectoryStore(tmp_path / "run" / "prefilter"):
        attempts.setdefault(t.task_id.removesuffix("@prefilter"), []).append(t.passed)
    assert sorted(attempts) == ["arith-0", "arith-1", "maths-0", "maths-1"]
    assert all(len(v) == 3 for v in attempts.values())
    mixed = sorted(k for k, v in attempts.items() if any(v) and not all(v))
    kept = json.loads((tmp_path / "run" / "prefilter.json").read_text())
    assert sorted(kept) == mixed and mixed  # this seed leaves a non-empty pool
    trained = {t.task_id.split("@")[0] for t in TrajectoryStore(tmp_path / "run" / "rollouts")}
    assert trained <= set(mixed)
    with pytest.raises(ValueError, match="prefilter_attempts"):
        RLConfig.model_validate(tool_fields(tmp_path, rollout={"prefilter_attempts": 1}))


def test_several_updates_per_batch_clip_against_the_policy_that_sampled(tmp_path: Path) -> None:
    """`minibatches: 2, epochs: 2`: four updates a step, each on half of the batch. After the
    first, the ratio is taken against the sampler, so clipping starts; with the in-process
    engine the sampler is the trainer, so truncated IS against the trainer's pre-update
    logprobs (read before the first update) must give the same run as the sampler's."""
    base = {**bandit_fields(tmp_path, max_response_tokens=4), "steps": 2}
    runs = {
        "one": {},
        "four": {"minibatches": 2, "epochs": 2},
        "four-tis": {
            "minibatches": 2,
            "epochs": 2,
            "objective": {**base["objective"], "tis_cap": 2.0},
        },
    }
    records = {}
    for name, extra in runs.items():
        run_in_process({**base, **extra, "output_dir": str(tmp_path / name)}, bandit_verify)
        records[name] = read_metrics(tmp_path / name)
    assert [r["updates"] for r in records["one"]] == [1, 1]
    assert [r["updates"] for r in records["four"]] == [4, 4]
    clipped = [
        m["clip_low"] + m["clip_high"] for r in records["four"] for m in r["domains"].values()
    ]
    assert max(clipped) > 0  # later updates move the policy away from the sampler
    assert all(m["clip_low"] + m["clip_high"] == 0 for m in records["one"][0]["domains"].values())
    for got, want in zip(records["four-tis"], records["four"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-4, abs=1e-6)
        assert got["reward_mean"] == want["reward_mean"]
        for domain, m in want["domains"].items():
            assert got["domains"][domain]["clip_low"] == pytest.approx(m["clip_low"], abs=1e-6)
            assert got["domains"][domain]["clip_high"] == pytest.approx(m["clip_high"], abs=1e-6)
    config = yaml.safe_load((tmp_path / "one" / "config.yaml").read_text())
    assert "minibatches" not in config and "epochs" not in config  # out of the keys at default
