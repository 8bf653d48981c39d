"""OPD under DDP: an update's gradient is the one-process gradient whatever the number of ranks
and the micro-batch size (a rank without samples included), and a 2-rank torchrun run equals a
one-process run step by step, also when it is killed with SIGKILL and resumed."""

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
from longhorizon.distill.config import DistillConfig
from longhorizon.distill.monitors import read_token_monitors
from longhorizon.distill.opd import KILL_ENV
from longhorizon.distill.step import accumulate_gradients
from longhorizon.training.checkpoint import STATE_FILE
from longhorizon.training.config import Parallel
from longhorizon.training.distributed import DistEnv, rank_share, wrap_model
from longhorizon.training.metrics import read_metrics
from tests.test_distill_objective import WEIGHTS, grads, load_float64, make_batch, settings
from tests.test_distill_opd import DISTILL_SCRIPT, launch, opd_fields, run_in_process
from tests.test_distill_staleness import STALE
from tests.test_rl_ddp import assert_records_close
from tests.test_training_sft import TORCHRUN

SPLITS = ("strided", "all-on-rank-0")  # the trainer's split, and a rank with no sample at all
MICRO = (1, 4)


def whole_grads(model: torch.nn.Module) -> list[torch.Tensor]:
    """Every parameter's gradient, whole (FSDP2 holds DTensor shards), then zeroed."""
    return [g.full_tensor() if hasattr(g, "full_tensor") else g for g in grads(model)]


def _rank_worker(rank: int, init_file: str, path: str, out: str, parallel: Parallel) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        env = DistEnv(parallel, rank=rank, world_size=2)
        model = load_float64(path)
        if parallel == "fsdp2":  # sharded: every forward is a collective, ranks in lockstep
            model = wrap_model(model, env)
        samples, scores = make_batch(model.config.vocab_size)
        results: dict[tuple[str, int], Any] = {}
        for split in SPLITS:
            mine = rank_share(range(len(samples)), env)
            if split == "all-on-rank-0":
                mine = list(range(len(samples))) if rank == 0 else []
            for micro in MICRO:
                record = accumulate_gradients(
                    model,
                    [samples[i] for i in mine],
                    [scores[i] for i in mine],
                    settings("domain", micro, WEIGHTS),
                    env,
                )
                results[(split, micro)] = (record, whole_grads(model))
        torch.save(results, out.format(rank=rank))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("parallel", ["ddp", "fsdp2"])
def test_two_ranks_and_any_micro_batch_give_the_one_process_gradient(
    tiny_llama_path: str, parallel: Parallel
) -> None:
    """float64, weighted domain aggregation (the one search sample lands on one rank), against
    one process on the whole batch at once; under fsdp2 with the ranks' micro-batch counts
    unequal (a rank with none at all idles through the others' collectives)."""
    model = load_float64(tiny_llama_path)
    samples, scores = make_batch(model.config.vocab_size)
    model.zero_grad(set_to_none=True)
    want = accumulate_gradients(model, samples, scores, settings("domain", len(samples), WEIGHTS))
    want_grads = grads(model)
    with tempfile.TemporaryDirectory() as tmp:
        init, out = os.path.join(tmp, "init"), os.path.join(tmp, "rank{rank}.pt")
        mp.spawn(_rank_worker, args=(init, tiny_llama_path, out, parallel), nprocs=2, join=True)
        got = [torch.load(out.format(rank=r), weights_only=False) for r in (0, 1)]
    assert set(got[0]) == {(s, m) for s in SPLITS for m in MICRO}
    for key, (record, got_grads) in got[0].items():
        assert record["loss"] == pytest.approx(want["loss"], rel=1e-10, abs=1e-12), key
        assert_records_close(record["domains"], want["domains"], rel=1e-9)
        for g, w, other in zip(got_grads, want_grads, got[1][key][1], strict=True):
            torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-9)
            assert torch.equal(g, other)  # both ranks step on the same gradient


# ---- the trainer under torchrun ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("parallel", "staleness"), [("ddp", 0), ("fsdp2", 0), ("fsdp2", 1)], ids=str
)
def test_a_two_rank_run_equals_one_process_and_resumes_after_sigkill(
    tmp_path: Path, parallel: Parallel, staleness: int
) -> None:
    """Two minibatches per step: each is drawn over the whole step's samples, so the ranks'
    updates are the one-process updates; the per-token monitors are gathered to rank 0.
    fsdp2: the student sharded (checkpoints too), rollouts on a gathered replica; with
    max_staleness 1 each rank's next rollouts run while its sharded update runs."""
    rollout = {**STALE, "max_staleness": staleness}
    fields = opd_fields(tmp_path, steps=2, save_every=1, minibatches=2, rollout=rollout)
    run_in_process({**fields, "output_dir": str(tmp_path / "baseline")})
    want = read_metrics(tmp_path / "baseline")
    config = tmp_path / "distill.yaml"
    config.write_text(json.dumps({**fields, "parallel": parallel}))  # JSON is YAML
    script = tmp_path / "run_distill.py"
    script.write_text(DISTILL_SCRIPT)
    args = [*TORCHRUN, str(script), str(config)]
    killed = launch(args, {KILL_ENV: "2"})
    assert killed.returncode != 0, killed.stderr[-3000:]
    run = tmp_path / "run"
    assert [r["step"] for r in read_metrics(run)] == [1, 2]  # step 2 logged, then killed
    step1 = run / "checkpoints" / "step-00000001"
    state = json.loads((step1 / STATE_FILE).read_text())
    assert (state["world_size"], state["parallel"]) == (2, parallel)
    assert (step1 / "sharded").is_dir() == (parallel == "fsdp2")
    resumed = launch(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("resumed from") == 1  # rank 0 speaks, rank 1 is quiet
    assert "step-00000001" in resumed.stdout
    got = read_metrics(run)
    assert [r["step"] for r in got] == [1, 2]
    policy_versions = [r["engine"].get("policy_version") for r in got]
    assert policy_versions == ([0, 0] if staleness else [None, None])
    for g, w in zip(got, want, strict=True):
        assert g["rollouts"] == w["rollouts"] and g["updates"] == w["updates"] == 2
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-5)
        assert g["grad_norm"] == pytest.approx(w["grad_norm"], rel=1e-4)
        assert_records_close(g["domains"], w["domains"], rel=1e-5, absolute=1e-9)
    place = [(m.step, m.trajectory_id, m.sequence, m.positions) for m in read_token_monitors(run)]
    base = read_token_monitors(tmp_path / "baseline")
    assert place == [(m.step, m.trajectory_id, m.sequence, m.positions) for m in base]
    stored = [t.id for t in TrajectoryStore(run / "rollouts")]
    assert len(stored) == len(set(stored)) == 8  # 2 steps x 4 prompts, each once, both ranks
    assert AutoModelForCausalLM.from_pretrained(run / "final") is not None


def test_ddp_and_fsdp2_take_a_served_engine_and_keep_the_fingerprint(tmp_path: Path) -> None:
    fields = opd_fields(tmp_path)
    plain = DistillConfig.model_validate(fields)
    assert "parallel" not in plain.model_dump()  # at its default: earlier content keys hold
    for parallel in ("ddp", "fsdp2"):
        served = {**fields, "rollout": {"backend": "vllm"}, "parallel": parallel}
        assert DistillConfig.model_validate(served).rollout.backend == "vllm"
        split = DistillConfig.model_validate({**fields, "parallel": parallel})
        assert split.fingerprint() == plain.fingerprint()  # resumes on any rank count


def _open_shared_worker(rank: int, init_file: str, url: str, workdir: str, out: str) -> None:
    from longhorizon.distill.shared_engine import SharedServerEngine
    from longhorizon.serving.options import VLLMEngineConfig

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        config = VLLMEngineConfig(base_url=url)
        SharedServerEngine.open("unused", config, Path(workdir), 1, DistEnv("ddp", rank, 2))
        Path(out.format(rank=rank)).write_text("opened")
    except RuntimeError as exc:
        Path(out.format(rank=rank)).write_text(str(exc))
    finally:
        dist.destroy_process_group()


def test_a_rollout_server_rank_0_cannot_open_fails_every_rank_with_its_reason() -> None:
    """Under ddp, rank 0 opens the one vLLM server; the others must not wait forever for an
    address it never had (here: nothing listens at the base URL)."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    with tempfile.TemporaryDirectory() as tmp:
        init, out = os.path.join(tmp, "init"), os.path.join(tmp, "rank{rank}.txt")
        mp.spawn(_open_shared_worker, args=(init, url, tmp, out), nprocs=2, join=True)
        told = [Path(out.format(rank=r)).read_text() for r in (0, 1)]
    assert told[0] == told[1]
    assert told[0].startswith("rank 0 could not open the rollout server: ConnectError")
