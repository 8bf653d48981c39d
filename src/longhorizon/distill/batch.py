"""Rollouts + teacher scores -> the aligned tensors the distillation losses take.

Row t of every per-position tensor is about the token predicted from hidden state t, i.e.
token t + 1 of the sequence (the one-step shift is applied here, once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from longhorizon.distill.scoring import TeacherScores
from longhorizon.distill.types import TeacherSignal, TokenLayout

__all__ = ["DistillBatch", "RolloutSample", "build_batch"]


@dataclass(frozen=True)
class RolloutSample:
    """One training sequence of a rollout: exact ids, the 0/1 mask, its domain."""

    domain: str
    input_ids: list[int]
    loss_mask: list[int]
    trajectory_id: str = ""  # where it came from (the per-token monitor log names it)
    sequence: int = 0  # its index in the trajectory's `token_sequences()`
    # the sampler's logprob of each token (0 on prompts); None when the backend gave none
    engine_logprobs: list[float] | None = None

    def positions(self) -> list[int]:
        """Target positions the loss trains (generated tokens after the first)."""
        return [p for p in range(1, len(self.input_ids)) if self.loss_mask[p]]


@dataclass(frozen=True)
class DistillBatch:
    input_ids_NT: torch.Tensor  # the model input (padded right)
    attention_NT: torch.Tensor
    layout: TokenLayout  # shifted: T - 1 rows
    teacher: TeacherSignal


def _rows_tensor(
    n: int, width: int, per_row: list[np.ndarray | None], fill: float, dtype: torch.dtype
) -> torch.Tensor:
    """(n, width - 1, K) of `fill`; each sample's (P_i, K) array is placed later by `_place`."""
    k = max((a.shape[1] for a in per_row if a is not None), default=0)
    return torch.full((n, width - 1, k), fill, dtype=dtype)


def _place(out: torch.Tensor, i: int, rows: torch.Tensor, values: np.ndarray, k: int) -> None:
    width = min(k, values.shape[1])
    out[i, rows, :width] = torch.from_numpy(np.ascontiguousarray(values[:, :width])).to(out.dtype)


def build_batch(
    samples: list[RolloutSample],
    scores: list[TeacherScores],
    domains: list[str],
    pad_id: int,
    top_k: int,
    domain_weights: dict[str, float] | None = None,
    sample_scale_N: torch.Tensor | None = None,
) -> DistillBatch:
    """Padded tensors of the samples; `domain_weights` (missing: 1) weigh the domain means and
    `sample_scale_N` carries the batch-level objective weights (see `aggregate.sample_scales`)."""
    n, width = len(samples), max(len(s.input_ids) for s in samples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width - 1), dtype=torch.long)
    top_ids = torch.full((n, width - 1, top_k), -1, dtype=torch.long)
    top_lp = torch.zeros((n, width - 1, top_k), dtype=torch.float32)
    sampled_lp = torch.zeros((n, width - 1), dtype=torch.float32)
    student = [s.student_ids for s in scores]
    has_student = all(a is not None for a in student) and n > 0
    student_ids = _rows_tensor(n, width, student, -1, torch.long) if has_student else None
    student_lp = _rows_tensor(n, width, student, 0.0, torch.float32) if has_student else None
    full = [s.full_logprobs for s in scores]
    has_full = all(a is not None for a in full) and n > 0
    vocab = full[0].shape[1] if has_full and full[0] is not None else 0
    full_lp = torch.zeros((n, width - 1, vocab), dtype=torch.float32) if has_full else None
    for i, (sample, score) in enumerate(zip(samples, scores, strict=True)):
        length = len(sample.input_ids)
        ids[i, :length] = torch.tensor(sample.input_ids)
        attention[i, :length] = 1
        rows = torch.from_numpy(np.asarray(score.positions, dtype=np.int64)) - 1
        mask[i, rows] = 1
        sampled_lp[i, rows] = torch.from_numpy(np.asarray(score.target_logprobs, np.float32))
        if score.top_ids.size:
            _place(top_ids, i, rows, score.top_ids, top_k)
            _place(top_lp, i, rows, score.top_logprobs, top_k)
        if student_ids is not None and student_lp is not None:
            assert score.student_ids is not None and score.student_logprobs is not None
            _place(student_ids, i, rows, score.student_ids, student_ids.shape[-1])
            _place(student_lp, i, rows, score.student_logprobs, student_lp.shape[-1])
        if full_lp is not None and score.full_logprobs is not None:
            full_lp[i, rows] = torch.from_numpy(score.full_logprobs)
    layout = TokenLayout(
        loss_mask_NT=mask,
        sample_domain_N=torch.tensor([domains.index(s.domain) for s in samples]),
        sampled_ids_NT=ids[:, 1:].clone(),
        domain_weights_D=None
        if domain_weights is None
        else torch.tensor([domain_weights.get(d, 1.0) for d in domains]),
        sample_scale_N=sample_scale_N,
    )
    teacher = TeacherSignal(
        top_ids_NTK=top_ids,
        top_logprobs_NTK=top_lp,
        sampled_logprobs_NT=sampled_lp,
        student_top_ids_NTK=student_ids,
        logprobs_on_student_top_NTK=student_lp,
        logprobs_NTV=full_lp,
    )
    return DistillBatch(ids, attention, layout, teacher)
