"""The policy's whole weights in one plain module, for the passes that read them whole.

A rollout snapshot, a vLLM checkpoint and its greedy check, the engine-vs-trainer KL and the
student's top-k all run the policy outside the training step, each rank on its own share. Under
FSDP2 a rank holds only shards, and every forward of the sharded model is a collective; these
passes read a replica instead: a plain copy of the model, refilled from the shards (an
all-gather per parameter) whenever the weights changed since the last read. Under DDP or in
one process the model is its own replica. The cost under FSDP2: one copy of the weights per
rank, without gradients or optimizer state (those stay sharded).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.distributed.tensor import DTensor

from longhorizon.training.distributed import DistEnv

__all__ = ["PolicyReplica"]


class PolicyReplica:
    """Made from the plain model before `wrap_model` shards it; `read` after each update."""

    def __init__(self, model: nn.Module, env: DistEnv) -> None:
        self._copy: nn.Module | None = None
        if env.parallel == "fsdp2":
            self._copy = copy.deepcopy(model).requires_grad_(False).eval()
        self._version: int | None = None

    def read(self, trained: nn.Module, version: int) -> nn.Module:
        """`trained`'s weights at update count `version`, in a plain module. Collective under
        FSDP2 when the version changed: every rank reads at the same points of the step."""
        if self._copy is None:
            return trained
        if version != self._version:
            self._refill(trained)
            self._version = version
        return self._copy

    @torch.no_grad()
    def _refill(self, trained: nn.Module) -> None:
        """Copy `trained`'s weights in, one whole tensor at a time (each DTensor's all-gather
        in the same order on every rank), so no second whole copy is ever held."""
        assert self._copy is not None
        target = self._copy.state_dict()  # a tied output layer appears under both names
        for name, value in trained.state_dict().items():
            if name not in target:
                raise RuntimeError(f"the replica has no {name}: it is not the trained model's")
            whole = value.full_tensor() if isinstance(value, DTensor) else value
            target[name].copy_(whole)
            del whole
