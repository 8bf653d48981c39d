"""GRPO under DDP and FSDP2: the gradient of a step is the one-process gradient whatever the
number of ranks and the micro-batch size, and a 2-rank torchrun run equals a one-process run step
by step, also when it is killed with SIGKILL and resumed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import AutoModelForCausalLM

from longhorizon.core import TrajectoryStore
from longhorizon.rl import RLConfig
from longhorizon.rl.config import GRPOObjective
from longhorizon.rl.grpo import KILL_ENV
from longhorizon.rl.step import accumulate_gradients
from longhorizon.training.checkpoint import STATE_FILE
from longhorizon.training.config import Parallel
from longhorizon.training.distributed import DistEnv, rank_share, wrap_model
from longhorizon.training.metrics import read_metrics
from tests.test_rl_grpo import RL_SCRIPT, launch, run_in_process, tool_fields
from tests.test_rl_objective import make_samples
from tests.test_training_sft import TORCHRUN

OBJECTIVES = {
    "token": GRPOObjective(kl_coef=0.1, entropy_coef=0.01),
    "sequence": GRPOObjective(kl_coef=0.1, entropy_coef=0.01, aggregation="sequence"),
}
SPLITS = ("strided", "all-on-rank-0")  # the trainer's split, and a rank with no sample at all
MICRO = (1, 4)


def load_models(path: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """float64 policy and a reference 0.02 away from it (so the KL term is not 0)."""
    policy = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64)
    ref = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64)
    noise = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=noise, dtype=p.dtype))
    return policy, ref.requires_grad_(False)


def take_grads(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter's gradient, whole (FSDP2 holds DTensor shards), then cleared."""
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    return [g.full_tensor() if hasattr(g, "full_tensor") else g for g in grads]


def _rank_worker(rank: int, init_file: str, path: str, out: str, parallel: Parallel) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        env = DistEnv(parallel, rank=rank, world_size=2)
        policy, ref = load_models(path)
        samples = make_samples(policy.config.vocab_size, n=7)
        if parallel == "fsdp2":  # sharded: every forward is a collective, ranks in lockstep
            policy = wrap_model(policy, env)
        results: dict[tuple[str, str, int], Any] = {}
        for name, objective in OBJECTIVES.items():
            for split in SPLITS:
                share = rank_share(samples, env)
                if split == "all-on-rank-0":
                    share = samples if rank == 0 else []
                for micro in MICRO:
                    record = accumulate_gradients(policy, ref, share, objective, micro, 0, env)
                    results[(name, split, micro)] = (record, take_grads(policy))
        torch.save(results, out.format(rank=rank))
    finally:
        dist.destroy_process_group()


def assert_records_close(
    got: Any, want: Any, rel: float, absolute: float = 0.0, where: str = ""
) -> None:
    """Nested metric records equal in their keys, strings and Nones, numbers within tolerance."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), where
        for key in want:
            assert_records_close(got[key], want[key], rel, absolute, f"{where}/{key}")
    elif isinstance(want, float | int) and not isinstance(want, bool):
        assert got == pytest.approx(want, rel=rel, abs=absolute), where
    else:
        assert got == want, where


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_two_ranks_and_any_micro_batch_give_the_one_process_gradient(
    tiny_llama_path: str, parallel: Parallel
) -> None:
    """float64, against one process on the whole batch at once: token- and sequence-mean, the
    trainer's strided split and a split that leaves rank 1 without samples, micro-batches of
    1 and 4 (a ragged last one); under fsdp2 the policy sharded, the reference whole."""
    policy, ref = load_models(tiny_llama_path)
    samples = make_samples(policy.config.vocab_size, n=7)
    want = {}
    for name, objective in OBJECTIVES.items():
        record = accumulate_gradients(policy, ref, samples, objective, len(samples), 0)
        want[name] = (record, take_grads(policy))
    with tempfile.TemporaryDirectory() as tmp:
        init, out = os.path.join(tmp, "init"), os.path.join(tmp, "rank{rank}.pt")
        mp.spawn(_rank_worker, args=(init, tiny_llama_path, out, parallel), nprocs=2, join=True)
        got = [torch.load(out.format(rank=r), weights_only=False) for r in (0, 1)]
    assert set(got[0]) == {(n, s, m) for n in OBJECTIVES for s in SPLITS for m in MICRO}
    for key, (record, grads) in got[0].items():
        want_record, want_grads = want[key[0]]
        assert record["loss"] == pytest.approx(want_record["loss"], rel=1e-10, abs=1e-12), key
        assert_records_close(record["domains"], want_record["domains"], rel=1e-9)
        for g, w, other in zip(grads, want_grads, got[1][key][1], strict=True):
            torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)
            assert torch.equal(g, other)  # both ranks step on the same gradient


# ---- the trainer under torchrun ----------------------------------------------------------------
def assert_same_curve(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Step by step: the same groups and rollouts, the same losses and monitors up to float
    rounding (the ranks sum in another order)."""
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g["groups"] == w["groups"] and g["rollouts"] == w["rollouts"]
        for key in ("reward_mean", "reward_std", "pass_rate", "response_tokens"):
            assert g[key] == pytest.approx(w[key], rel=1e-6, abs=1e-9), key
        # the loss sums terms of order 0.5 that may nearly cancel: its rounding is absolute
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-6, abs=1e-7)
        assert g["grad_norm"] == pytest.approx(w["grad_norm"], rel=1e-5)
        # engine_kl is rounding noise here (the snapshot is the policy): ~3e-5, to 1e-7
        assert_records_close(g["domains"], w["domains"], rel=1e-5, absolute=1e-6)


@pytest.mark.parametrize(
    ("parallel", "staleness"), [("ddp", 0), ("fsdp2", 0), ("fsdp2", 1)], ids=str
)
def test_a_two_rank_run_equals_one_process_and_resumes_after_sigkill(
    tmp_path: Path, parallel: Parallel, staleness: int
) -> None:
    """Groups of 2 with a refill round: some rounds leave rank 1 without a prompt. fsdp2: the
    policy sharded (checkpoints too), rollouts on a gathered replica; with max_staleness 1
    the next first round is rolled out (and gathered) while the sharded update runs, and each
    step makes two updates, with truncated IS against the replica's pre-update logprobs."""
    rollout = {"prompts_per_step": 2, "group_size": 2, "max_tries": 2, "concurrency": 1}
    rollout |= {"max_staleness": staleness}
    fields = tool_fields(tmp_path, steps=2, save_every=1, rollout=rollout, micro_batch_size=2)
    if staleness:
        objective = {**fields["objective"], "tis_cap": 2.0}  # type: ignore[dict-item]
        fields |= {"minibatches": 2, "objective": objective}
    run_in_process({**fields, "output_dir": str(tmp_path / "baseline")})
    want = read_metrics(tmp_path / "baseline")
    assert all(r["loss"] is not None for r in want)  # an update every step
    assert [r["updates"] for r in want] == [1 + staleness] * 2
    assert any(r["groups"]["rounds"] == 2 for r in want)  # a group was dropped and refilled
    config = tmp_path / "rl.yaml"
    config.write_text(json.dumps({**fields, "parallel": parallel}))  # JSON is YAML
    script = tmp_path / "run_rl.py"
    script.write_text(RL_SCRIPT)
    args = [*TORCHRUN, str(script), str(config)]
    killed = launch(args, {KILL_ENV: "2"})
    assert killed.returncode != 0, killed.stderr[-3000:]
    run = tmp_path / "run"
    assert [r["step"] for r in read_metrics(run)] == [1, 2]  # step 2 logged, then killed
    assert not (run / "final").exists()
    step1 = run / "checkpoints" / "step-00000001"
    state = json.loads((step1 / STATE_FILE).read_text())
    assert (state["world_size"], state["parallel"]) == (2, parallel)
    assert (step1 / "sharded").is_dir() == (parallel == "fsdp2")
    resumed = launch(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("resumed from") == 1  # rank 0 speaks, rank 1 is quiet
    assert "step-00000001" in resumed.stdout
    got = read_metrics(run)
    assert_same_curve(got, want)
    versions = [r["engine"].get("policy_version") for r in got]
    assert versions == ([0, 0] if staleness else [None, None])  # step 2's first round: 0
    stored = [t.id for t in TrajectoryStore(run / "rollouts")]
    baseline = [t.id for t in TrajectoryStore(tmp_path / "baseline" / "rollouts")]
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(baseline)
    assert AutoModelForCausalLM.from_pretrained(run / "final") is not None


def test_ddp_and_fsdp2_take_a_served_engine_and_keep_the_fingerprint(tmp_path: Path) -> None:
    fields = tool_fields(tmp_path)
    served = {**fields, "rollout": {"backend": "vllm"}, "objective": {"tis_cap": 2.0}}
    plain = RLConfig.model_validate(fields)
    assert "parallel" not in plain.model_dump()  # at its default: earlier content keys hold
    for parallel in ("ddp", "fsdp2"):
        assert RLConfig.model_validate({**served, "parallel": parallel}).rollout.backend == "vllm"
        split = RLConfig.model_validate({**fields, "parallel": parallel})
        assert split.fingerprint() == plain.fingerprint()  # resumes on any rank count
