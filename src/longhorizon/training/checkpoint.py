"""Resumable checkpoints, written atomically, and the final Hugging Face export.

Layout of `OUTPUT/checkpoints/step-00000040/`:
    model.pt          full model state dict, keys by parameter name (single process and DDP)
    optimizer.pt      full optimizer state, keys by parameter name (single process and DDP)
    sharded/          FSDP2 instead: model and optimizer state through torch.distributed.checkpoint,
                      each rank writing only its own shards (`__R_0.distcp`, plus `.metadata`);
                      nothing is gathered to rank 0. It loads into any world size or parallelism
                      (DCP reshards on load), a single process included.
    scheduler.pt      LR scheduler state
    rng-rank{R}.pt    python, numpy, torch (and CUDA) RNG states of each rank
    trainer_state.json  step, epoch, data position, world size, data and config fingerprints
Everything is written into `.tmp-step-N/`, then renamed: a SIGKILL leaves either a complete
checkpoint or a temp dir that the next save removes. `trainer_state.json` is written last.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from pydantic import BaseModel
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

from longhorizon.training.distributed import DistEnv, barrier, unwrap

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"
SHARDED = "sharded"


class TrainerState(BaseModel):
    """Where a run stands: `step` optimizer steps done; the next batch is a function of it."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    total_steps: int = 0
    world_size: int = 1
    parallel: str = "none"
    data_fingerprint: str = ""
    config_fingerprint: str = ""
    tokens_seen: int = 0


def checkpoint_path(output_dir: Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS / f"step-{step:08d}"


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp dirs and half-written ones are skipped)."""
    root = Path(output_dir) / CHECKPOINTS
    if not root.exists():
        return []
    done = [p for p in root.glob("step-*") if (p / STATE_FILE).exists()]
    return sorted(done, key=lambda p: p.name)


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


# ---- RNG ---------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG a step may draw from, as tensors and plain values (loadable weights_only)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state(("MT19937", keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- saving ------------------------------------------------------------------------------
def _fsync_tree(path: Path) -> None:
    for file in path.iterdir():
        if file.is_dir():
            _fsync_tree(file)
            continue
        with open(file, "rb") as f:
            os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)


def full_state(
    model: nn.Module, optimizer: torch.optim.Optimizer | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Full model (and optimizer) state on rank 0, empty elsewhere; collective under FSDP2."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_sd = get_model_state_dict(model, options=options)
    optim_sd = get_optimizer_state_dict(model, optimizer, options=options) if optimizer else {}
    return model_sd, optim_sd


def sharded_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """This rank's model and optimizer state, keys by parameter name: DTensor shards under
    FSDP2, plain tensors otherwise (as load templates, DCP fills either from any layout)."""
    return {
        "model": get_model_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer),
    }


def load_sharded(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Read a `sharded/` checkpoint into this rank's model and optimizer (collective)."""
    state = sharded_state(model, optimizer)  # initialises AdamW's state to have slots to fill
    dcp.load(state, checkpoint_id=path, no_dist=not dist.is_initialized())
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])


def save_checkpoint(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainerState,
    output_dir: Path,
    env: DistEnv,
    keep: int,
) -> Path:
    """Write a complete checkpoint for `state.step` atomically; keep the newest `keep`."""
    final = checkpoint_path(output_dir, state.step)
    tmp = final.with_name(f".tmp-{final.name}")
    if env.is_main:
        for stale in final.parent.glob(".tmp-step-*"):  # left by a process killed mid-save
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(env)
    torch.save(rng_state(), tmp / f"rng-rank{env.rank}.pt")
    if env.parallel == "fsdp2":  # each rank writes its own shards
        dcp.save(sharded_state(model, optimizer), checkpoint_id=tmp / SHARDED)
    else:
        model_sd, optim_sd = full_state(model, optimizer)  # every rank takes part
        if env.is_main:
            torch.save(model_sd, tmp / "model.pt")
            torch.save(optim_sd, tmp / "optimizer.pt")
    if env.is_main:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    barrier(env)
    if env.is_main:
        (tmp / STATE_FILE).write_text(state.model_dump_json(indent=2))
        _fsync_tree(tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(env)
    return final


def load_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    env: DistEnv,
) -> TrainerState:
    """Restore model, optimizer, scheduler and this rank's RNG; returns the trainer state."""
    if (path / SHARDED).exists():
        load_sharded(path / SHARDED, model, optimizer)
    else:
        load_full(path, model, optimizer, env)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_file = path / f"rng-rank{env.rank}.pt"
    if rng_file.exists():  # absent when the world size changed: the step uses no randomness
        set_rng_state(torch.load(rng_file, weights_only=False))
    return TrainerState.model_validate_json((path / STATE_FILE).read_text())


def load_full(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, env: DistEnv) -> None:
    """Read `model.pt` and `optimizer.pt` (written by a single process or DDP)."""
    # Under FSDP2 rank 0 reads the files and broadcasts shard by shard; DDP ranks read them all.
    broadcast = env.parallel == "fsdp2" and env.world_size > 1
    reads = env.is_main or not broadcast
    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=broadcast)
    model_sd = torch.load(path / "model.pt", map_location="cpu", weights_only=True) if reads else {}
    set_model_state_dict(model, model_sd, options=options)
    optim_sd = torch.load(path / "optimizer.pt", weights_only=True) if reads else {}
    set_optimizer_state_dict(model, optimizer, optim_sd, options=options)


def resume_latest(
    output_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    env: DistEnv,
    config_fingerprint: str,
) -> tuple[Path, TrainerState] | None:
    """Load the newest checkpoint of `output_dir` (None when there is none); a checkpoint of
    another config is an error, never a silent restart."""
    found = latest_checkpoint(output_dir)
    if found is None:
        return None
    state = load_checkpoint(found, model, optimizer, scheduler, env)
    if state.config_fingerprint != config_fingerprint:
        raise RuntimeError(f"{found}: the config changed since this checkpoint")
    return found, state


def end_of_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainerState,
    output_dir: Path,
    env: DistEnv,
    keep: int,
    every: int,
    kill_env: str,
) -> Path | None:
    """After step `state.step` is logged: a checkpoint every `every` steps (not after the last,
    the final model follows), then the SIGKILL test hook (`kill_env`=N kills after step N)."""
    path = None
    if state.step % every == 0 and state.step < state.total_steps:
        path = save_checkpoint(model, optimizer, scheduler, state, output_dir, env, keep)
    if os.environ.get(kill_env) == str(state.step):
        barrier(env)  # every rank gets here (rank 0's log line written) before any dies
        os.kill(os.getpid(), signal.SIGKILL)
    return path


def save_final_model(
    model: nn.Module,
    tokenizer: Any,
    out: Path,
    env: DistEnv,
    metadata: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """`save_pretrained` model + tokenizer (+ JSON metadata files), atomically."""
    model_sd, _ = full_state(model, None)
    out = Path(out)
    if env.is_main:
        tmp = out.with_name(f".tmp-{out.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        export_pretrained(unwrap(model), model_sd, env).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, content in (metadata or {}).items():
            (tmp / name).write_text(json.dumps(content, indent=2) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        os.rename(tmp, out)
    barrier(env)
    return out


def export_pretrained(model: nn.Module, state: dict[str, Any], env: DistEnv) -> Any:
    """A plain transformers model holding `state` (FSDP2 modules hold only their shards)."""
    if env.parallel != "fsdp2":
        return model
    from transformers import AutoModelForCausalLM

    config = model.config
    dtype = next(iter(state.values())).dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=dtype)
    fresh.load_state_dict(state)
    return fresh
