"""Inputs and outputs of the distillation losses.

Shape suffixes: N sequences, T positions, H hidden size, V vocabulary, K teacher candidates per
position. Every per-position tensor is aligned with the hidden state that PREDICTS it: row [n, t]
of `sampled_ids_NT`, of the teacher's top-k, etc. is about the token scored from `hidden_NTH[n, t]`
(the caller applies the usual one-step shift once, when it builds the batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True)
class StudentHead:
    """The student's final hidden states (after the final norm) and output layer (maybe tied)."""

    hidden_NTH: Tensor
    lm_head_weight_VH: Tensor

    def __post_init__(self) -> None:
        if self.hidden_NTH.dim() != 3 or self.lm_head_weight_VH.dim() != 2:
            raise ValueError("hidden_NTH must be (N, T, H) and lm_head_weight_VH (V, H)")
        if self.hidden_NTH.shape[2] != self.lm_head_weight_VH.shape[1]:
            raise ValueError("hidden size differs between hidden_NTH and lm_head_weight_VH")
        if self.hidden_NTH.dtype != self.lm_head_weight_VH.dtype:
            raise ValueError("hidden_NTH and lm_head_weight_VH must share a dtype")

    @property
    def vocab_size(self) -> int:
        return self.lm_head_weight_VH.shape[0]


@dataclass(frozen=True)
class TokenLayout:
    """Which positions are trained and which domain each sample belongs to.

    loss_mask_NT: 1 on student-generated positions R_i (tool outputs, user turns, prompt: 0).
    sample_domain_N: domain index of each sample (hard routing: it names the scoring teacher).
    sampled_ids_NT: the student's own tokens (needed by `sampled_token`).
    domain_weights_D: relative weight of each domain id in the domain-normalised objective
        (None: all equal, the spec).
    sample_scale_N: objective weight of each trainable position of sample n, computed over the
        whole optimizer batch (`aggregate.sample_scales`); None: normalise within this batch.
    """

    loss_mask_NT: Tensor
    sample_domain_N: Tensor
    sampled_ids_NT: Tensor | None = None
    domain_weights_D: Tensor | None = None
    sample_scale_N: Tensor | None = None

    def __post_init__(self) -> None:
        mask = self.loss_mask_NT
        if self.sample_scale_N is not None and self.sample_scale_N.shape != mask.shape[:1]:
            raise ValueError("sample_scale_N must be (N,)")
        if mask.dim() != 2 or self.sample_domain_N.shape != mask.shape[:1]:
            raise ValueError("loss_mask_NT must be (N, T) and sample_domain_N (N,)")
        if self.sampled_ids_NT is not None and self.sampled_ids_NT.shape != self.loss_mask_NT.shape:
            raise ValueError("sampled_ids_NT must be (N, T)")
        weights = self.domain_weights_D
        if weights is not None:
            needed = int(self.sample_domain_N.max()) + 1 if self.sample_domain_N.numel() else 0
            if weights.dim() != 1 or weights.shape[0] < needed:
                raise ValueError("domain_weights_D must give a weight for every domain id")
            if not bool((weights >= 0).all()) or not bool((weights > 0).any()):
                raise ValueError("domain_weights_D must be >= 0 with at least one > 0")


@dataclass(frozen=True)
class TeacherSignal:
    """What the routed teacher shipped for each position (only the fields a loss kind needs).

    top_ids_NTK / top_logprobs_NTK: teacher top-K ids and their logprobs under the teacher's FULL
        softmax (sva, union, sva_tail; also the coverage monitor). Ids < 0 are padding.
    sampled_logprobs_NT: teacher logprob of the student's sampled token (sampled_token).
    student_top_ids_NTK / logprobs_on_student_top_NTK: the student's top-k ids (see
        `student_topk_ids`) and the teacher's logprobs of them (student_topk, union).
    logprobs_NTV: the teacher's full logprobs (full_rkl; small V or ablations only).
    """

    top_ids_NTK: Tensor | None = None
    top_logprobs_NTK: Tensor | None = None
    sampled_logprobs_NT: Tensor | None = None
    student_top_ids_NTK: Tensor | None = None
    logprobs_on_student_top_NTK: Tensor | None = None
    logprobs_NTV: Tensor | None = None

    def __post_init__(self) -> None:
        pairs = [
            (self.top_ids_NTK, self.top_logprobs_NTK, "top_ids_NTK/top_logprobs_NTK"),
            (
                self.student_top_ids_NTK,
                self.logprobs_on_student_top_NTK,
                "student_top_ids_NTK/logprobs_on_student_top_NTK",
            ),
        ]
        for ids, logprobs, name in pairs:
            if (ids is None) != (logprobs is None):
                raise ValueError(f"{name} come together")
            if ids is not None and logprobs is not None:
                if ids.shape != logprobs.shape or ids.dim() != 3:
                    raise ValueError(f"{name} must both be (N, T, K)")
                if ids.dtype != torch.int64:
                    raise ValueError(f"{name}: ids must be int64")


@dataclass(frozen=True)
class DomainMetrics:
    """Per-domain monitors (no gradient); means of per-sample means over the domain's samples.

    loss: the objective's per-token value (for sampled_token: the surrogate -a * log p_s).
    kl: the reverse-KL estimate the kind optimises (equal to `loss` except for sampled_token,
        where it is the single-sample estimate log p_s(y) - log p_t(y)).
    coverage: student mass on the teacher's top-k under its full softmax, rho = sum_S p_s(u);
        None when disabled or when the teacher's top-k was not provided.
    """

    loss: float
    kl: float
    coverage: float | None
    n_samples: int
    n_tokens: int


@dataclass(frozen=True)
class DistillMetrics:
    loss: float
    coverage: float | None
    n_tokens: int
    n_samples: int
    per_domain: dict[int, DomainMetrics] = field(default_factory=dict)


@dataclass(frozen=True)
class PositionMonitors:
    """The per-position monitors behind `DistillMetrics`, detached: what the viewer shows.

    rows_P: index of each trainable position into the flattened (N, T) rows (row t predicts
    token t + 1); kl_P: the kind's reverse-KL estimate there; coverage_P: rho there (or None).
    """

    rows_P: Tensor
    kl_P: Tensor
    coverage_P: Tensor | None = None


@dataclass(frozen=True)
class DistillOutput:
    """The scalar objective (differentiable) and detached monitors."""

    loss: Tensor
    metrics: DistillMetrics
    positions: PositionMonitors | None = None
