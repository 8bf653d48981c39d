"""Rollouts + teacher scores -> the aligned tensors the distillation losses take.

Row t of every per-position tensor is about the token predicted from hidden state t, i.e.
token t + 1 of the sequence (the one-step shift is applied here, once).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longhorizon.distill.types import TeacherSignal, TokenLayout
from longhorizon.models.types import SequenceScores


@dataclass(frozen=True)
class RolloutSample:
    """One training sequence of a rollout: exact ids, the 0/1 mask, its domain."""

    domain: str
    input_ids: list[int]
    loss_mask: list[int]

    def positions(self) -> list[int]:
        """Target positions the loss trains (generated tokens after the first)."""
        return [p for p in range(1, len(self.input_ids)) if self.loss_mask[p]]


@dataclass(frozen=True)
class DistillBatch:
    input_ids_NT: torch.Tensor  # the model input (padded right)
    attention_NT: torch.Tensor
    layout: TokenLayout  # shifted: T - 1 rows
    teacher: TeacherSignal


def build_batch(
    samples: list[RolloutSample],
    scores: list[SequenceScores],
    domains: list[str],
    pad_id: int,
    top_k: int,
    domain_weights: dict[str, float] | None = None,
) -> DistillBatch:
    """Padded tensors of the samples; `domain_weights` (missing: 1) weigh the domain means."""
    n, width = len(samples), max(len(s.input_ids) for s in samples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width - 1), dtype=torch.long)
    top_ids = torch.full((n, width - 1, top_k), -1, dtype=torch.long)
    top_lp = torch.zeros((n, width - 1, top_k), dtype=torch.float32)
    sampled_lp = torch.zeros((n, width - 1), dtype=torch.float32)
    for i, (sample, score) in enumerate(zip(samples, scores, strict=True)):
        length = len(sample.input_ids)
        ids[i, :length] = torch.tensor(sample.input_ids)
        attention[i, :length] = 1
        rows = torch.tensor(score.positions, dtype=torch.long) - 1
        mask[i, rows] = 1
        sampled_lp[i, rows] = torch.tensor(score.target_logprobs, dtype=torch.float32)
        if score.top_ids:
            k = min(top_k, len(score.top_ids[0]))
            top_ids[i, rows, :k] = torch.tensor(score.top_ids, dtype=torch.long)[:, :k]
            top_lp[i, rows, :k] = torch.tensor(score.top_logprobs, dtype=torch.float32)[:, :k]
    layout = TokenLayout(
        loss_mask_NT=mask,
        sample_domain_N=torch.tensor([domains.index(s.domain) for s in samples]),
        sampled_ids_NT=ids[:, 1:].clone(),
        domain_weights_D=None
        if domain_weights is None
        else torch.tensor([domain_weights.get(d, 1.0) for d in domains]),
    )
    teacher = TeacherSignal(
        top_ids_NTK=top_ids, top_logprobs_NTK=top_lp, sampled_logprobs_NT=sampled_lp
    )
    return DistillBatch(ids, attention, layout, teacher)
