"""One vLLM rollout server for every rank of a DDP run (OPD and GRPO, `parallel: ddp`).

The ranks hold replicas of one policy, so one server can serve them all: rank 0 starts it (or
attaches to `vllm.base_url`) and is the only rank that writes a checkpoint and reloads it;
every rank samples its share of the step's episodes from it as a client. After each sync,
rank 0 tells the others whether the server took the weights, so no rank samples from a
server that is still on the previous step's weights, and a failed sync fails every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.distributed as dist

from longhorizon.models.types import Backend
from longhorizon.serving.engine import VLLMEngine
from longhorizon.serving.options import EngineKind, VLLMEngineConfig
from longhorizon.training.distributed import DistEnv

__all__ = ["SharedServerEngine"]


class SharedServerEngine:
    """A `RolloutEngine` whose server rank 0 holds and syncs, shared by every rank."""

    kind: EngineKind = "vllm"

    def __init__(self, engine: VLLMEngine, env: DistEnv) -> None:
        self.engine, self.env = engine, env

    @classmethod
    def open(
        cls,
        model_path: str,
        config: VLLMEngineConfig,
        workdir: Path,
        concurrency: int,
        env: DistEnv,
    ) -> SharedServerEngine:
        """Rank 0 opens the engine (a server started, or attached); the others get its
        address and weight version, and attach to it. A server rank 0 cannot open fails
        every rank, with rank 0's reason."""
        engine: VLLMEngine | None = None
        shared: list[Any] = [None, None, None]  # rank 0's problem, (url, name), version
        if env.is_main:
            try:
                engine = VLLMEngine.open(model_path, config, workdir, concurrency)
                shared = [None, (engine.url, engine.served_name), engine.version]
            except Exception as exc:
                shared = [f"{type(exc).__name__}: {exc}", None, None]
        dist.broadcast_object_list(shared, src=0)
        problem, where, version = shared
        if problem is not None:
            raise RuntimeError(f"rank 0 could not open the rollout server: {problem}")
        if engine is None:
            url, name = where
            sync_dir = config.sync_dir or workdir / "engine"
            engine = VLLMEngine(url, name, model_path, sync_dir, concurrency, version=version)
        return cls(engine, env)

    @property
    def version(self) -> int | None:
        return self.engine.version

    @version.setter
    def version(self, value: int | None) -> None:
        self.engine.version = value

    @property
    def backend(self) -> Backend:
        return self.engine.backend

    @property
    def model(self) -> None:
        """No in-process copy: the weights live in the server."""
        return None

    async def sync(self, model: Any, version: int) -> dict[str, Any]:
        """Rank 0 syncs the server; every rank returns once it holds `version` (rank 0's
        timings; `{}` elsewhere and when already in step)."""
        if version == self.engine.version:
            return {}
        timings: dict[str, Any] = {}
        problem: list[str | None] = [None]
        if self.env.is_main:
            try:
                timings = await self.engine.sync(model, version)
            except Exception as exc:  # told to every rank below, then raised on each
                problem = [f"{type(exc).__name__}: {exc}"]
        dist.broadcast_object_list(problem, src=0)
        if problem[0] is not None:
            raise RuntimeError(f"rank 0's weight sync to version {version} failed: {problem[0]}")
        self.engine.version = version
        return timings

    async def aclose(self) -> None:
        await self.engine.aclose()

    def close(self) -> None:
        """Stop the server where this rank started it (rank 0; the others started none)."""
        self.engine.close()
