"""The rollout engine: the sampler a trainer rolls out on, kept in step with the trainer's weights.

GRPO (`rl/grpo.py`) and OPD (`distill/opd.py`) hold the policy as a transformers model, roll
out through the harness on `engine.backend`, and call `await engine.sync(policy, version)`
before the rollouts of each step (`version`: the step whose weights the policy holds; a sync
to the version the engine already holds does nothing):

    hf    an in-process copy of the policy (`HFBackend`); sync copies the state dict. The CPU
          default: the sampler's numbers are the trainer's.
    vllm  a vLLM server behind the OpenAI backend: started for the run
          (`VLLMServer(weight_sync=True)`) or already running and attached by URL. Sync writes
          the weights as a safetensors checkpoint (a temporary folder, renamed when complete,
          so the server never reads half a checkpoint), has the server reload them in place
          (`/collective_rpc` -> `vllm_ext/longhorizon_vllm_ext.py`, which calls vLLM's own
          `reload_weights`), resets its prefix cache (KV computed by the old weights must not
          be reused) and tags the server's weight version. The sampler's logprobs then come
          from vLLM's kernels: GRPO corrects for the difference with truncated importance
          sampling, and both trainers log the engine-vs-trainer KL.

The server reads the checkpoint from a path, so it must see the trainer's filesystem (the same
machine, or a shared mount named by `vllm.sync_dir`). Measured for SmolLM2-135M on this CPU box
(`bench/vllm_weight_sync.py`): a sync takes 0.87 s, restarting the server on the new weights
instead 34 s (39x).
"""

from __future__ import annotations

import asyncio
import copy
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import httpx
import torch

from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.types import Backend
from longhorizon.serving.options import EngineKind, VLLMEngineConfig
from longhorizon.serving.vllm import VLLMServer

__all__ = [
    "EngineKind",
    "HFEngine",
    "RolloutEngine",
    "VLLMEngine",
    "VLLMEngineConfig",
    "WeightSyncError",
    "open_engine",
    "policy_server",
    "write_checkpoint",
]

SERVED_NAME = "policy"
SYNC_METHOD = "longhorizon_sync_weights"  # the worker extension's method
PROBE = "The three primary colours are"  # `check_tokens`' fixed prompt
PARTIAL_PREFIX = ".partial-"
RPC_TIMEOUT_S = 600.0


class WeightSyncError(RuntimeError):
    """The server did not take the new weights (the message says what it answered)."""


class RolloutEngine(Protocol):
    """What the trainers use: a backend for the harness and a weight sync."""

    kind: EngineKind
    version: int | None  # the trainer step whose weights the engine holds (None: unknown)

    @property
    def backend(self) -> Backend:
        """What the harness generates with."""

    @property
    def model(self) -> Any | None:
        """An in-process model holding the rollout weights, or None (a server)."""

    async def sync(self, model: Any, version: int) -> dict[str, Any]:
        """Give the engine `model`'s weights; returns timings (empty when already in step)."""

    async def aclose(self) -> None:
        """Close the backend's clients (in the event loop that used them)."""

    def close(self) -> None:
        """Stop what the engine started (idempotent)."""


class HFEngine:
    """Rollouts on an in-process copy of the policy."""

    kind: EngineKind = "hf"

    def __init__(self, model: Any, tokenizer: Any, concurrency: int, version: int | None) -> None:
        self.backend = HFBackend(
            copy.deepcopy(model), tokenizer, model_id="snapshot", max_batch_size=concurrency
        )
        self.version = version

    @property
    def model(self) -> Any:
        return self.backend.model

    async def sync(self, model: Any, version: int) -> dict[str, Any]:
        if version == self.version:
            return {}
        start = time.perf_counter()
        self.backend.model.load_state_dict(model.state_dict())
        self.version = version
        return {"version": version, "sync_seconds": time.perf_counter() - start}

    async def aclose(self) -> None:
        await self.backend.aclose()

    def close(self) -> None:
        """Nothing to stop: the copy goes with the process."""


def policy_server(model_path: str, config: VLLMEngineConfig, log_path: Path) -> VLLMServer:
    """The (not yet started) server of a vLLM rollout engine for `model_path`."""
    return VLLMServer(
        model_path,
        served_model_name=SERVED_NAME,
        dtype=config.dtype,
        max_model_len=config.max_model_len,
        startup_timeout_s=config.startup_timeout_s,
        log_path=log_path,
        weight_sync=True,
    )


class VLLMEngine:
    """Rollouts on a vLLM server whose weights `sync` replaces in place."""

    kind: EngineKind = "vllm"

    def __init__(
        self,
        url: str,
        served_name: str,
        tokenizer: str,
        sync_dir: Path,
        concurrency: int,
        *,
        server: VLLMServer | None = None,
        version: int | None = None,
        check_tokens: int = 0,
    ) -> None:
        self.url = url.rstrip("/").removesuffix("/v1")
        self.served_name = served_name
        self.check_tokens = check_tokens
        self.sync_dir = sync_dir
        self.server = server
        self.version = version
        self.backend = OpenAIBackend(
            f"{self.url}/v1", model=served_name, tokenizer=tokenizer, max_concurrency=concurrency
        )

    @property
    def model(self) -> None:
        """No in-process copy: the weights live in the server."""
        return None

    @classmethod
    def open(
        cls, model_path: str, config: VLLMEngineConfig, workdir: Path, concurrency: int
    ) -> VLLMEngine:
        """Attach to `config.base_url` (weights unknown until the first sync), or start a
        server on `model_path` (it then holds version 0, the starting weights)."""
        sync_dir = config.sync_dir or workdir / "engine"
        check = config.check_tokens
        if config.base_url is not None:
            url = config.base_url.rstrip("/").removesuffix("/v1")
            name = served_model(url)
            return cls(url, name, model_path, sync_dir, concurrency, check_tokens=check)
        server = policy_server(model_path, config, workdir / "engine" / "vllm.log").start()
        name = server.served_model_name
        return cls(
            server.url,
            name,
            model_path,
            sync_dir,
            concurrency,
            server=server,
            version=0,
            check_tokens=check,
        )

    async def sync(self, model: Any, version: int) -> dict[str, Any]:
        if version == self.version:
            return {}
        return await asyncio.to_thread(self._sync, model, version)

    def _sync(self, model: Any, version: int) -> dict[str, Any]:
        clock = [time.perf_counter()]
        folder = write_checkpoint(model, self.sync_dir, version)
        clock.append(time.perf_counter())
        with httpx.Client(timeout=RPC_TIMEOUT_S) as client:
            load = {"method": SYNC_METHOD, "kwargs": {"weights_path": str(folder.resolve())}}
            self._post(client, "/collective_rpc", load)
            reset = self._post(client, "/reset_prefix_cache", None)
            if reset.get("success") is not True:
                raise WeightSyncError(f"{self.url} could not reset its prefix cache: {reset}")
            self._post(client, "/update_weight_version", {"new_version": str(version)})
            clock.append(time.perf_counter())
            checked = self._check(client, model) if self.check_tokens else {}
        prune_checkpoints(self.sync_dir, keep=folder)
        self.version = version
        return {
            "version": version,
            "write_seconds": clock[1] - clock[0],
            "load_seconds": clock[2] - clock[1],
            "sync_seconds": clock[2] - clock[0],
            **checked,
        }

    def _check(self, client: httpx.Client, model: Any) -> dict[str, Any]:
        """The server's and the trainer's greedy tokens after `PROBE`, compared."""
        tokenizer = self.backend.tokenizer
        assert tokenizer is not None  # OpenAIBackend loaded it from the model's folder
        prompt = list(tokenizer.encode(PROBE))
        payload = {
            "model": self.served_name,
            "prompt": prompt,
            "max_tokens": self.check_tokens,
            "temperature": 0.0,
            "ignore_eos": True,  # exactly check_tokens tokens, as the trainer's loop
            "return_token_ids": True,
        }
        served = self._post(client, "/v1/completions", payload)["choices"][0]["token_ids"]
        trained = greedy_tokens(model, prompt, self.check_tokens)
        return {"greedy_match": served == trained, "greedy_tokens": len(trained)}

    def _post(self, client: httpx.Client, path: str, payload: Any) -> dict[str, Any]:
        response = client.post(f"{self.url}{path}", json=payload)
        if response.status_code == 404:
            raise WeightSyncError(
                f"{self.url} has no {path}: start the server with weight sync "
                "(`longhorizon vllm serve MODEL --weight-sync`, or VLLMServer(weight_sync=True))"
            )
        if response.status_code != 200:
            raise WeightSyncError(
                f"{self.url}{path} answered HTTP {response.status_code}: {response.text[:2000]}"
            )
        return response.json() if response.content else {}

    async def aclose(self) -> None:
        await self.backend.aclose()

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


@torch.no_grad()
def greedy_tokens(model: Any, prompt: list[int], count: int) -> list[int]:
    """`count` argmax tokens of the transformers model after `prompt` (EOS not special)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids = list(prompt)
    for _ in range(count):
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0, -1]
        ids.append(int(logits.argmax()))
    model.train(was_training)
    return ids[len(prompt) :]


def served_model(url: str) -> str:
    """The model name a running server serves (its /v1/models' first entry)."""
    response = httpx.get(f"{url}/v1/models", timeout=30.0)
    response.raise_for_status()
    models = response.json().get("data") or []
    if not models:
        raise WeightSyncError(f"{url}/v1/models lists no model")
    return str(models[0]["id"])


def write_checkpoint(model: Any, root: Path, version: int) -> Path:
    """`model.save_pretrained` into ROOT/step-VERSION, atomically: written to a temporary
    folder beside it and renamed once complete (a rerun replaces an earlier one)."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{version:06d}"
    partial = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=root))
    try:
        model.save_pretrained(partial)  # safetensors; tied weights written once
        if final.exists():
            shutil.rmtree(final)
        os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def prune_checkpoints(root: Path, keep: Path) -> None:
    """Remove every checkpoint folder but `keep` (the one the server now holds)."""
    for path in root.iterdir():
        if path.is_dir() and path != keep and path.name.startswith(("step-", PARTIAL_PREFIX)):
            shutil.rmtree(path, ignore_errors=True)


def open_engine(
    kind: EngineKind,
    policy: Any,
    tokenizer: Any,
    *,
    model_path: str,
    vllm: VLLMEngineConfig,
    workdir: Path,
    concurrency: int,
    version: int,
) -> RolloutEngine:
    """The engine of a run whose `policy` holds the weights of step `version`."""
    if kind == "hf":
        return HFEngine(policy, tokenizer, concurrency, version)
    if kind == "vllm":
        return VLLMEngine.open(model_path, vllm, workdir, concurrency)
    raise ValueError(f"unknown rollout backend {kind!r}: hf or vllm")
