"""The policy's whole weights in one plain module, for the passes that read them whole.

A rollout snapshot, a vLLM checkpoint and its greedy check, the engine-vs-trainer KL and the
student's top-k all run the policy outside the training step, each rank on its own share. Under
FSDP2 a rank holds only shards, and every forward of the sharded model is a collective; these
passes read a replica instead: a plain copy of the model, refilled from the shards (one
all-gather) whenever the weights changed since the last read. Under DDP or in one process the
model is its own replica. The cost under FSDP2: one copy of the weights per rank, without
gradients or optimizer state (those stay sharded).
"""

from __future__ import annotations

import copy

from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

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
            options = StateDictOptions(full_state_dict=True)
            state = get_model_state_dict(trained, options=options)
            missing, unexpected = self._copy.load_state_dict(state, strict=False)
            # a tied output layer is the embedding: its key may be left out
            tied = getattr(self._copy.config, "tie_word_embeddings", False)
            if set(missing) - ({"lm_head.weight"} if tied else set()) or unexpected:
                raise RuntimeError(f"replica does not match the model: {missing} {unexpected}")
            self._version = version
        return self._copy
