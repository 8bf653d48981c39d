"""Deterministic data order: which packed rows each rank trains on at each optimizer step.

The order of epoch e is a permutation of the packed rows seeded by (seed, e); step k of the
epoch takes rows [k * B, (k + 1) * B) of it (B = global batch, in rows; the last step of an
epoch may be short). Rank r trains on rows r, r + W, r + 2W, ... of the step, `micro_batch_size`
rows per forward pass. Ranks left with fewer micro-batches run padding micro-batches that
train nothing, so all ranks take part in every collective. Since the batch of a step is a
function of the step alone, a checkpoint only needs the step number to resume the data
exactly, and the set of rows in a step does not depend on the world size.
"""

from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np
import torch

from longhorizon.training.data import Sample
from longhorizon.training.packing import Isolation, MicroBatch, collate, padding_batch


class StepPlan:
    def __init__(
        self,
        rows: list[list[int]],
        *,
        batch_size: int,
        micro_batch_size: int,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
    ) -> None:
        if not rows:
            raise ValueError("no training rows: did the data filters leave any sample?")
        self.rows = rows
        self.batch_size = batch_size
        self.micro = micro_batch_size
        self.world_size = world_size
        self.rank = rank
        self.seed = seed
        self.steps_per_epoch = math.ceil(len(rows) / batch_size)
        self._order = lru_cache(maxsize=2)(self._epoch_order)

    def total_steps(self, epochs: int, max_steps: int | None) -> int:
        return max_steps if max_steps is not None else epochs * self.steps_per_epoch

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, step within the epoch) of the 0-based global `step`."""
        return divmod(step, self.steps_per_epoch)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def step_rows(self, step: int) -> list[int]:
        """Indices of the packed rows of global `step`, all ranks together."""
        epoch, k = self.position(step)
        return self._order(epoch)[k * self.batch_size : (k + 1) * self.batch_size].tolist()

    def rank_micro_batches(self, step: int) -> list[list[int] | None]:
        """This rank's micro-batches (lists of row indices); None marks a padding micro-batch."""
        rows = self.step_rows(step)
        mine = rows[self.rank :: self.world_size]
        count = math.ceil(math.ceil(len(rows) / self.world_size) / self.micro)
        chunks: list[list[int] | None] = [
            mine[i : i + self.micro] for i in range(0, len(mine), self.micro)
        ]
        return chunks + [None] * (count - len(chunks))


def build_micro_batches(
    plan: StepPlan,
    step: int,
    samples: list[Sample],
    isolation: Isolation,
    pad_id: int,
    mask_dtype: torch.dtype = torch.float32,
) -> list[MicroBatch]:
    """Collate this rank's micro-batches of `step` (packed rows laid end to end per micro-batch)."""
    batches = []
    for chunk in plan.rank_micro_batches(step):
        if chunk is None:
            batches.append(padding_batch(pad_id))
            continue
        members = [samples[i] for row in chunk for i in plan.rows[row]]
        batches.append(collate(members, isolation, mask_dtype))
    return batches


def data_fingerprint(samples: list[Sample], rows: list[list[int]]) -> str:
    """Hash of the packed data: a resumed run must see exactly the same rows."""
    h = hashlib.sha256()
    for row in rows:
        for i in row:
            h.update(samples[i].input_ids.tobytes())
            h.update(samples[i].loss_mask.tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]
