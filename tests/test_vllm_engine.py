"""The weight-synced vLLM rollout engine (`serving/engine.py`) shared by GRPO and OPD.

Tests marked `vllm` attach to ONE rollout-engine server per session (`vllm_policy_server` in
conftest.py, SmolLM2-135M in float32, weight sync on); each syncs its own weights before it
samples. The OPD run's teacher is the plain `vllm_server`. The rest need no server.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from longhorizon.core import SamplingParams, TaskStore, TrajectoryStore
from longhorizon.distill.config import DistillConfig
from longhorizon.domains import verify
from longhorizon.domains.instruction.tasks import propose_instruction_tasks
from longhorizon.rl import RLConfig, run_rl
from longhorizon.serving.engine import (
    VLLMEngine,
    WeightSyncError,
    greedy_tokens,
    write_checkpoint,
)
from longhorizon.serving.options import VLLMEngineConfig
from longhorizon.serving.vllm import EXTENSION_CLS, EXTENSION_DIR, VLLMServer
from longhorizon.training.metrics import read_metrics

SHORT = {"max_turns": 1, "max_tokens": 16, "concurrency": 2}


def perturb(model: Any, part: str, scale: float, seed: int) -> None:
    """Multiply the parameters whose name contains `part` by 1 + scale * N(0, 1)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if part in name:
                param.mul_(1 + scale * torch.randn(param.shape, generator=generator))


def sampled_logprobs(model: Any, prompt: list[int], completion: list[int]) -> list[float]:
    ids = torch.tensor([prompt + completion])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
    rows = range(len(prompt) - 1, len(prompt) + len(completion) - 1)
    return [float(logp[r, ids[0, r + 1]]) for r in rows]


def weight_version(server: VLLMServer) -> str:
    return str(httpx.get(f"{server.url}/weight_info", timeout=30).json()["weight_version"])


@pytest.mark.vllm
def test_after_each_sync_the_servers_greedy_tokens_are_the_trainers(
    vllm_policy_server: VLLMServer, tmp_path: Path
) -> None:
    path = vllm_policy_server.model_path
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    prompt = list(tokenizer.encode("Name three colours and say why you like them:"))
    config = VLLMEngineConfig(base_url=vllm_policy_server.base_url, check_tokens=12)
    engine = VLLMEngine.open(path, config, tmp_path, concurrency=2)
    assert engine.version is None  # attached: its weights are unknown until the first sync
    # the starting weights, then the tied embeddings / lm_head (rebuilt by the worker
    # extension on CPU), then every parameter
    changes = [("", 0.0), ("embed_tokens", 0.05), ("", 0.02)]
    greedy = SamplingParams(temperature=0.0, max_tokens=16)

    async def main() -> list[list[int]]:
        said = []
        try:
            for version, (part, scale) in enumerate(changes):
                perturb(model, part, scale, seed=version)
                record = await engine.sync(model, version)
                assert record["greedy_match"] is True and record["greedy_tokens"] == 12
                assert record["version"] == version and record["sync_seconds"] > 0
                assert await engine.sync(model, version) == {}  # already in step
                completion = await engine.backend.generate(prompt, greedy)
                ids = completion.completion_ids
                assert ids == greedy_tokens(model, prompt, len(ids))
                assert completion.logprobs is not None
                trainer = sampled_logprobs(model, prompt, ids)
                gaps = [abs(a - b) for a, b in zip(completion.logprobs, trainer, strict=True)]
                assert max(gaps) < 2e-3  # a stale lm_head moved these by ~0.8 nats
                assert weight_version(vllm_policy_server) == str(version)
                kept = sorted(p.name for p in (tmp_path / "engine").iterdir())
                assert kept == [f"step-{version:06d}"]  # older checkpoints pruned
                said.append(ids)
        finally:
            await engine.aclose()
        return said

    said = asyncio.run(main())
    assert said[0] != said[1] != said[2]  # each sync changed what the server says


def instruction_tasks(root: Path, n: int = 3) -> Path:
    if not root.exists():
        with TaskStore(root) as store:
            for task in propose_instruction_tasks(n, seed=0):
                store.add(task)
    return root


def opd_fields(
    policy: VLLMServer, teacher_server: VLLMServer, tmp_path: Path, steps: int
) -> dict[str, Any]:
    """`steps` OPD steps of SmolLM2-135M rolled out on `policy`, scored by `teacher_server`."""
    teacher = {
        "domain": "instruction",
        "model": teacher_server.served_model_name,
        "backend": "openai",
        "base_url": teacher_server.base_url,
        "tokenizer": teacher_server.model_path,
    }
    engine = {"base_url": policy.base_url, "check_tokens": 8}
    return {
        "model": "smollm2-135m",
        "teachers": [teacher],
        "tasks": [str(instruction_tasks(tmp_path / "tasks"))],
        "output_dir": str(tmp_path / "run"),
        "steps": steps,
        "lr": 1e-4,
        "micro_batch_size": 2,
        "loss": {"k": 8},
        "rollout": {"prompts_per_step": 2, **SHORT, "backend": "vllm", "vllm": engine},
        "tensorboard": False,
        "num_threads": 1,
    }


@pytest.mark.vllm
def test_distill_cli_with_the_student_on_vllm_and_a_vllm_teacher_runs_five_steps(
    vllm_policy_server: VLLMServer, vllm_server: VLLMServer, tmp_path: Path
) -> None:
    fields = opd_fields(vllm_policy_server, vllm_server, tmp_path, steps=5)
    config = tmp_path / "distill.yaml"
    config.write_text(yaml.safe_dump(fields))
    args = [sys.executable, "-m", "longhorizon.cli.main", "distill", "--config", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5]
    for r in records:
        e = r["engine"]
        assert e["backend"] == "vllm" and e["synced"] and e["version"] == r["step"] - 1
        assert e["greedy_match"] is True, e  # after each sync: the server's tokens are ours
        assert e["tokens"] > 0 and abs(e["kl"]) < 1e-2, e
        assert set(e["domains"]) == {"instruction"}
        assert r["domains"]["instruction"]["samples"] > 0 and r["grad_norm"] > 0
    assert "engine kl" in run.stdout
    assert (tmp_path / "run" / "final" / "longhorizon_distill.json").exists()


@pytest.mark.vllm
def test_streaming_opd_on_vllm_rolls_out_one_version_behind(
    vllm_policy_server: VLLMServer, vllm_server: VLLMServer, tmp_path: Path
) -> None:
    """`max_staleness: 1` on a vLLM engine: the server is synced after each step's scoring and
    the next step's rollouts run on it during the update. The attached server holds another
    test's weights at first, so the first step syncs before it rolls out."""
    from longhorizon.distill.opd import run_distill
    from longhorizon.distill.rollouts import POLICY_VERSION

    fields = opd_fields(vllm_policy_server, vllm_server, tmp_path, steps=3)
    fields["rollout"] = {**fields["rollout"], "max_staleness": 1}  # type: ignore[dict-item]
    threads = torch.get_num_threads()
    try:
        run_distill(DistillConfig.model_validate(fields), verify)
    finally:
        torch.set_num_threads(threads)
    records = read_metrics(tmp_path / "run")
    engine = [r["engine"] for r in records]
    assert [e["policy_version"] for e in engine] == [0, 0, 1]
    assert [e["staleness"] for e in engine] == [0, 1, 1]
    assert [e["version"] for e in engine] == [0, 1, 2]  # step 1 before its rollouts
    assert all(e["synced"] and e["greedy_match"] is True for e in engine), engine
    assert abs(engine[0]["kl"]) < 1e-2 and all(e["tokens"] > 0 for e in engine)
    assert set(records[0]["phase_seconds"]) == {"rollout", "score", "train", "overlap_wait"}
    stored = list(TrajectoryStore(tmp_path / "run" / "rollouts"))
    versions = {t.id.split("@step")[1][0]: t.metadata[POLICY_VERSION] for t in stored}
    assert len(stored) == 6 and versions == {"0": 0, "1": 0, "2": 1}
    assert weight_version(vllm_policy_server) == "2"


def grpo_fields(server: VLLMServer, tmp_path: Path, prompts: int) -> dict[str, Any]:
    """2 GRPO steps of `prompts` groups of 2 on SmolLM2-135M, rolled out on `server`."""
    rollout = {"prompts_per_step": prompts, "group_size": 2, "max_tries": 1, **SHORT}
    engine = {"base_url": server.base_url, "check_tokens": 8}
    return {
        "model": "smollm2-135m",
        "tasks": [str(instruction_tasks(tmp_path / "tasks"))],
        "output_dir": str(tmp_path / "run"),
        "steps": 2,
        "lr": 1e-4,
        "rollout": {
            **rollout,
            "dynamic_sampling": False,
            **SHORT,
            "backend": "vllm",
            "vllm": engine,
        },
        "objective": {"tis_cap": 2.0, "entropy_coef": 0.01},  # entropy: a gradient at A = 0
        "micro_batch_size": 2,
        "tensorboard": False,
        "num_threads": 1,
    }


def synced_each_step(run: Path) -> list[dict[str, Any]]:
    """The run's 2 step records, each after a sync that left the server's greedy tokens ours."""
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        e = r["engine"]
        assert e["backend"] == "vllm" and e["synced"] and e["version"] == r["step"] - 1
        assert e["greedy_match"] is True, e
    return records


@pytest.mark.vllm
def test_grpo_steps_roll_out_on_the_vllm_engine(
    vllm_policy_server: VLLMServer, tmp_path: Path
) -> None:
    fields = grpo_fields(vllm_policy_server, tmp_path, prompts=1)
    threads = torch.get_num_threads()
    try:
        run_rl(RLConfig.model_validate(fields), verify)
    finally:
        torch.set_num_threads(threads)
    for r in synced_each_step(tmp_path / "run"):
        assert abs(r["engine"]["kl"]) < 1e-2
        assert abs(r["domains"]["instruction"]["engine_kl"]) < 1e-2 and r["grad_norm"] > 0
    stored = list(TrajectoryStore(tmp_path / "run" / "rollouts"))
    assert len(stored) == 4
    assert all(c.completion_logprobs for t in stored for c in t.calls)  # vLLM's: pi_old


GRPO_SCRIPT = (
    "import json, sys\n"
    "from longhorizon.domains import verify\n"
    "from longhorizon.rl import RLConfig, run_rl\n"
    "run_rl(RLConfig.model_validate(json.load(open(sys.argv[1]))), verify)\n"
)


@pytest.mark.vllm
def test_two_ddp_ranks_roll_out_on_one_server_that_rank_0_syncs(
    vllm_policy_server: VLLMServer, tmp_path: Path
) -> None:
    """GRPO under torchrun, 2 ranks, one group each: every rank samples from the one server,
    which holds each step's weights before any rank samples (rank 0 checks its greedy tokens
    against its own replica after each sync)."""
    from tests.test_training_sft import TORCHRUN

    fields = {**grpo_fields(vllm_policy_server, tmp_path, prompts=2), "parallel": "ddp"}
    config, script = tmp_path / "rl.json", tmp_path / "run_rl.py"
    config.write_text(json.dumps(fields))
    script.write_text(GRPO_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    run = subprocess.run(
        [*TORCHRUN, str(script), str(config)], capture_output=True, text=True, env=env, timeout=900
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    synced_each_step(tmp_path / "run")
    stored = list(TrajectoryStore(tmp_path / "run" / "rollouts"))
    assert len(stored) == len({t.id for t in stored}) == 8  # 2 steps x 2 ranks x a group of 2
    assert weight_version(vllm_policy_server) == "1"  # rank 0 synced it, once per step


@pytest.mark.vllm
def test_a_server_without_weight_sync_is_refused_with_the_fix(
    vllm_server: VLLMServer, tiny_llama_path: str, tmp_path: Path
) -> None:
    engine = VLLMEngine.open(
        vllm_server.model_path, VLLMEngineConfig(base_url=vllm_server.url), tmp_path, 1
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    with pytest.raises(WeightSyncError, match="has no /collective_rpc: start the server with"):
        asyncio.run(engine.sync(model, 1))
    assert engine.version is None


# ---------------------------------------------------------------- no server needed
def test_a_vllm_engine_needs_truncated_importance_sampling(tmp_path: Path) -> None:
    fields: dict[str, Any] = {"model": "m", "tasks": [str(tmp_path)]}
    fields["rollout"] = {"backend": "vllm"}
    with pytest.raises(ValueError, match=r"set objective.tis_cap \(e.g. 2.0\)"):
        RLConfig.model_validate(fields)
    RLConfig.model_validate({**fields, "objective": {"tis_cap": 2.0}})


def test_engine_fields_stay_out_of_default_dumps_and_of_fingerprints(tmp_path: Path) -> None:
    rl: dict[str, Any] = {"model": "m", "tasks": [str(tmp_path)], "objective": {"tis_cap": 2.0}}
    plain = RLConfig.model_validate(rl)
    assert set(plain.model_dump()["rollout"]).isdisjoint({"backend", "vllm"})

    def served(url: str) -> RLConfig:
        vllm = {"base_url": url, "check_tokens": 4}
        return RLConfig.model_validate({**rl, "rollout": {"backend": "vllm", "vllm": vllm}})

    assert served("http://a:1").fingerprint() == served("http://b:2").fingerprint()
    assert served("http://a:1").fingerprint() != plain.fingerprint()
    assert served("http://a:1").model_dump()["rollout"]["vllm"]["base_url"] == "http://a:1"
    teachers = [{"domain": "d", "model": "m"}]
    opd = DistillConfig.model_validate({"model": "m", "teachers": teachers, "tasks": []})
    assert set(opd.model_dump()["rollout"]).isdisjoint({"backend", "vllm"})


def test_student_topk_kinds_on_vllm_need_a_sync_every_step() -> None:
    fields: dict[str, Any] = {
        "model": "m",
        "teachers": [{"domain": "d", "model": "m"}],
        "tasks": [],
        "loss": {"kind": "union"},
        "rollout": {"backend": "vllm", "refresh_every": 2},
    }
    with pytest.raises(ValueError, match=r"set rollout\.refresh_every: 1"):
        DistillConfig.model_validate(fields)
    DistillConfig.model_validate({**fields, "rollout": {"backend": "vllm"}})


def test_checkpoints_are_written_whole_or_not_at_all(tiny_llama_path: str, tmp_path: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    first = write_checkpoint(model, tmp_path, 1)
    assert first.name == "step-000001" and (first / "model.safetensors").exists()
    again = write_checkpoint(model, tmp_path, 1)  # a rerun replaces it
    assert again == first and sorted(p.name for p in tmp_path.iterdir()) == ["step-000001"]

    def fail(directory: Path) -> None:
        (Path(directory) / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    model.save_pretrained = fail
    with pytest.raises(OSError, match="disk full"):
        write_checkpoint(model, tmp_path, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000001"]  # no partial folder


def test_a_weight_sync_server_loads_our_worker_extension() -> None:
    server = VLLMServer("smollm2-135m", weight_sync=True, port=1)
    command, env = server.command(), server.environment()
    assert command[command.index("--worker-extension-cls") + 1] == EXTENSION_CLS
    assert env["VLLM_SERVER_DEV_MODE"] == "1"
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(EXTENSION_DIR)
    module = EXTENSION_DIR / f"{EXTENSION_CLS.split('.')[0]}.py"
    tree = ast.parse(module.read_text())
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert not [m for m in imported if m.startswith("longhorizon")]  # not in vLLM's venv
    plain = VLLMServer("smollm2-135m", port=1)
    assert "--worker-extension-cls" not in plain.command()
    dev = plain.environment().get("VLLM_SERVER_DEV_MODE")
    assert dev == os.environ.get("VLLM_SERVER_DEV_MODE")  # only what the caller set
