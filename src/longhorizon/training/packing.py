"""Sample packing (best-fit decreasing) and the tensors of one packed micro-batch.

A micro-batch is ONE row: its packed bins are laid end to end, since attention is isolated per
sample anyway, so no padding is ever needed. Isolation takes one of two forms:
- `position_ids` only: positions restart at 0 for every sample. Flash/varlen attention derives
  the sequence boundaries from them, and transformers (>= 4.5x, incl. 5.19) turns them into a
  block-diagonal causal mask for sdpa and eager when no attention mask is given;
- `mask`: an explicit block-diagonal causal 4D mask, additive float (0 = attend, dtype min =
  blocked), which transformers passes through unchanged to eager (it adds the mask to the
  scores) and sdpa. The fallback for versions or kernels that do not read packed positions.
Labels are the next token where that token is trained and belongs to the same sample, -100
elsewhere: a sample's last token never predicts the next sample's first.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from longhorizon.training.data import Sample

IGNORE = -100
Isolation = Literal["position_ids", "mask"]


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins of item indices: longest item first, each into the fullest bin it still fits.

    Deterministic: ties in length keep index order, ties in free space go to the older bin.
    Items longer than `capacity` are an error (the data builder's over-long policy runs first).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (free space, bin index)
    for i in order:
        size = lengths[i]
        if size > capacity:
            raise ValueError(f"item {i} has length {size} > capacity {capacity}")
        slot = bisect.bisect_left(free, (size, -1))
        if slot == len(free):
            bins.append([i])
            bisect.insort(free, (capacity - size, len(bins) - 1))
            continue
        space, b = free.pop(slot)
        bins[b].append(i)
        bisect.insort(free, (space - size, b))
    return bins


def pack_samples(samples: list[Sample], max_len: int, packing: bool = True) -> list[list[int]]:
    """Sample indices per packed row; one sample per row when packing is off."""
    if not packing:
        return [[i] for i in range(len(samples))]
    return best_fit_decreasing([len(s) for s in samples], max_len)


@dataclass
class MicroBatch:
    """One row of packed samples. Shapes (1, T); `domains` lists the samples in row order.

    token_scale_T: the weight of each trained position before the global normaliser: 1 for
    `token` normalisation, 1 / (trained tokens of its sample) for `sample` normalisation.
    """

    input_ids: Tensor
    labels: Tensor
    position_ids: Tensor
    sample_ids: Tensor  # index of the sample within the row, per position
    domains: list[str]
    num_samples: int
    num_tokens: int
    attention_mask: Tensor | None = None

    @property
    def num_trainable(self) -> int:
        return int((self.labels != IGNORE).sum())

    @property
    def num_trained_samples(self) -> int:
        """Samples with at least one trained label: the `sample` normaliser counts these."""
        return len(torch.unique(self.sample_ids[self.labels != IGNORE]))

    def token_scale(self, normalisation: str) -> Tensor:
        trained = (self.labels != IGNORE).to(torch.float64)
        if normalisation == "token":
            return trained
        counts = torch.bincount(self.sample_ids[0], weights=trained[0], minlength=self.num_samples)
        return trained / counts.clamp(min=1)[self.sample_ids]


def shifted_labels(sample: Sample) -> np.ndarray:
    """labels[t] = ids[t + 1] where token t + 1 is trained; the last position predicts nothing."""
    labels = np.full(len(sample), IGNORE, dtype=np.int64)
    trained_next = sample.loss_mask[1:].astype(bool)
    labels[:-1][trained_next] = sample.input_ids[1:][trained_next]
    return labels


def block_causal_mask(sample_ids: Tensor, dtype: torch.dtype) -> Tensor:
    """(1, 1, T, T) additive mask: position q sees k <= q of the same sample only."""
    same = sample_ids[0, :, None] == sample_ids[0, None, :]
    causal = torch.ones_like(same).tril()
    allowed = same & causal
    mask = torch.zeros(allowed.shape, dtype=dtype)
    mask.masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[None, None]


def collate(
    samples: list[Sample],
    isolation: Isolation = "position_ids",
    mask_dtype: torch.dtype = torch.float32,
) -> MicroBatch:
    """Lay samples end to end in one row with restarting positions and shifted labels."""
    ids = np.concatenate([s.input_ids for s in samples]).astype(np.int64)
    labels = np.concatenate([shifted_labels(s) for s in samples])
    positions = np.concatenate([np.arange(len(s)) for s in samples])
    owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(samples)])
    batch = MicroBatch(
        input_ids=torch.from_numpy(ids)[None],
        labels=torch.from_numpy(labels)[None],
        position_ids=torch.from_numpy(positions)[None],
        sample_ids=torch.from_numpy(owner)[None],
        domains=[s.domain for s in samples],
        num_samples=len(samples),
        num_tokens=int(ids.shape[0]),
    )
    if isolation == "mask":
        batch.attention_mask = block_causal_mask(batch.sample_ids, mask_dtype)
    return batch


def padding_batch(pad_id: int) -> MicroBatch:
    """A one-token micro-batch that trains nothing: keeps ranks in step when one runs out."""
    return MicroBatch(
        input_ids=torch.tensor([[pad_id]]),
        labels=torch.tensor([[IGNORE]]),
        position_ids=torch.tensor([[0]]),
        sample_ids=torch.tensor([[0]]),
        domains=[],
        num_samples=0,
        num_tokens=0,
    )
