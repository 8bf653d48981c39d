"""Stage-3 on-policy distillation losses: Salient Vocabulary Alignment (SVA) and its ablations.

SVA (spec section 3): at each trainable position t, S = the routed teacher's top-k valid ids. Both
models are renormalised on S and the loss is the reverse KL there,

    loss_t = sum_{u in S} pbar_s(u) * (log pbar_s(u) - log pbar_t(u)),
    pbar_s = softmax(z_S),  z_u = h_t · W_u,   pbar_t = softmax(teacher logprobs on S).

The student's full normaliser cancels in pbar_s, so only the k rows W_S of the output layer are
touched per position: cost O(k * H) instead of O(V * H), and the T x V logits never exist.

All kinds share one code path: pick the positions where the loss is defined (loss mask AND a
non-empty support), compute one value per position, weight it by the aggregation
(`aggregate.position_weights`), and report per-domain monitors. A salient id is valid when
0 <= id < V, it is not in `config.excluded_ids`, and its teacher logprob is finite; positions
without any valid id are not trainable (they count in no |R_i|).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from longhorizon.distill.aggregate import PositionWeights, per_domain_means, position_weights
from longhorizon.distill.config import DistillLossConfig
from longhorizon.distill.kernels import (
    chunked_full_rkl,
    chunked_logsumexp,
    compute_dtype,
    gather_logits,
    streaming_logsumexp,
)
from longhorizon.distill.types import (
    DistillMetrics,
    DistillOutput,
    DomainMetrics,
    PositionMonitors,
    StudentHead,
    TeacherSignal,
    TokenLayout,
)


@dataclass(frozen=True)
class Support:
    """Candidate ids per position with the teacher's logprobs of them and their validity."""

    ids: Tensor  # (..., K) int64, safe to index with (invalid slots hold 0)
    logprobs: Tensor  # (..., K) teacher logprobs, compute dtype, -inf on invalid slots
    valid: Tensor  # (..., K) bool

    def rows(self, rows_P: Tensor) -> Support:
        """The same support at flattened positions rows_P: (P, K)."""
        k = self.ids.shape[-1]
        return Support(
            ids=self.ids.reshape(-1, k).index_select(0, rows_P),
            logprobs=self.logprobs.reshape(-1, k).index_select(0, rows_P),
            valid=self.valid.reshape(-1, k).index_select(0, rows_P),
        )

    def defined(self) -> Tensor:
        return self.valid.any(-1)


def make_support(
    ids: Tensor,
    logprobs: Tensor,
    vocab_size: int,
    excluded_ids: tuple[int, ...],
    dtype: torch.dtype,
) -> Support:
    """Mask padding (< 0), out-of-vocabulary, excluded and non-finite-logprob candidates."""
    logprobs = logprobs.to(dtype)
    valid = (ids >= 0) & (ids < vocab_size) & torch.isfinite(logprobs)
    if excluded_ids:
        valid &= ~torch.isin(ids, torch.tensor(excluded_ids, dtype=ids.dtype, device=ids.device))
    return Support(
        ids=ids.masked_fill(~valid, 0),
        logprobs=logprobs.masked_fill(~valid, -torch.inf),
        valid=valid,
    )


def truncate_support(support: Support, k: int) -> Support:
    """Keep the k candidates with the highest teacher logprob (invalid ones sort last)."""
    if support.ids.shape[-1] <= k:
        return support
    pick = support.logprobs.topk(k, dim=-1).indices
    return Support(
        ids=support.ids.gather(-1, pick),
        logprobs=support.logprobs.gather(-1, pick),
        valid=support.valid.gather(-1, pick),
    )


def union_support(teacher: Support, student: Support) -> Support:
    """Teacher top-k ∪ student top-k; a student id already in the teacher's valid set is dropped."""
    same = student.ids.unsqueeze(-1) == teacher.ids.unsqueeze(-2)
    duplicate = (same & teacher.valid.unsqueeze(-2)).any(-1)
    valid_s = student.valid & ~duplicate
    return Support(
        ids=torch.cat([teacher.ids, student.ids.masked_fill(~valid_s, 0)], dim=-1),
        logprobs=torch.cat(
            [teacher.logprobs, student.logprobs.masked_fill(~valid_s, -torch.inf)], dim=-1
        ),
        valid=torch.cat([teacher.valid, valid_s], dim=-1),
    )


def renormalised_rkl(z_PK: Tensor, teacher_logprobs_PK: Tensor, valid_PK: Tensor) -> Tensor:
    """sum_{u in S} pbar_s(u) (log pbar_s(u) - log pbar_t(u)) per row; each row has a valid slot.

    Invalid slots are -inf before the softmax and their differences are zeroed BEFORE the product,
    so neither the value nor the gradient sees 0 * inf.
    """
    logp_s = torch.log_softmax(z_PK.masked_fill(~valid_PK, -torch.inf), dim=-1)
    logp_t = torch.log_softmax(teacher_logprobs_PK.masked_fill(~valid_PK, -torch.inf), dim=-1)
    diff = (logp_s - logp_t).masked_fill(~valid_PK, 0.0)
    return (logp_s.exp() * diff).sum(-1)


def _log_remaining_mass(log_mass_P: Tensor) -> Tensor:
    """log(1 - exp(log_mass)), floored at the smallest normal number (rounding can push the
    covered mass to >= 1, e.g. when S is the whole vocabulary); the floor has zero gradient."""
    tiny = torch.finfo(log_mass_P.dtype).tiny
    return torch.log(torch.clamp(-torch.expm1(log_mass_P), min=tiny))


def tail_rkl(z_PK: Tensor, lse_P: Tensor, teacher_logprobs_PK: Tensor, valid_PK: Tensor) -> Tensor:
    """Reverse KL over S plus one tail bucket (k + 1 outcomes), probabilities not renormalised."""
    logp_s = (z_PK - lse_P.unsqueeze(-1)).masked_fill(~valid_PK, -torch.inf)
    logp_t = teacher_logprobs_PK.masked_fill(~valid_PK, -torch.inf)
    head = (logp_s.exp() * (logp_s - logp_t).masked_fill(~valid_PK, 0.0)).sum(-1)
    tail_s = _log_remaining_mass(torch.logsumexp(logp_s, dim=-1))
    tail_t = _log_remaining_mass(torch.logsumexp(logp_t, dim=-1))
    return head + tail_s.exp() * (tail_s - tail_t)


@dataclass(frozen=True)
class _Batch:
    """The trainable positions of a batch, flattened, plus what the kinds need."""

    h_PH: Tensor
    w_VH: Tensor
    rows_P: Tensor  # index into the N * T flattened positions
    support: Support | None  # at the P positions; None for full_rkl / sampled_token
    teacher: TeacherSignal
    layout: TokenLayout
    config: DistillLossConfig


@dataclass(frozen=True)
class _PositionLosses:
    loss_P: Tensor
    kl_P: Tensor  # detached
    teacher_logits_PK: Tensor | None = None  # detached z on the teacher's top-k (coverage reuse)
    lse_P: Tensor | None = None  # detached full normaliser (coverage reuse)


def _salient_loss(batch: _Batch) -> _PositionLosses:
    """sva, student_topk, union: renormalised reverse KL on the support."""
    assert batch.support is not None
    s = batch.support
    z_PK = gather_logits(batch.h_PH, batch.w_VH, s.ids, batch.config.position_chunk)
    loss_P = renormalised_rkl(z_PK, s.logprobs, s.valid)
    reuse = z_PK.detach() if batch.config.kind == "sva" else None
    return _PositionLosses(loss_P=loss_P, kl_P=loss_P.detach(), teacher_logits_PK=reuse)


def _tail_loss(batch: _Batch) -> _PositionLosses:
    assert batch.support is not None
    s, cfg = batch.support, batch.config
    z_PK = gather_logits(batch.h_PH, batch.w_VH, s.ids, cfg.position_chunk)
    lse_P = chunked_logsumexp(batch.h_PH, batch.w_VH, cfg.position_chunk, cfg.vocab_chunk)
    loss_P = tail_rkl(z_PK, lse_P, s.logprobs, s.valid)
    return _PositionLosses(
        loss_P=loss_P, kl_P=loss_P.detach(), teacher_logits_PK=z_PK.detach(), lse_P=lse_P.detach()
    )


def _full_loss(batch: _Batch) -> _PositionLosses:
    full = batch.teacher.logprobs_NTV
    assert full is not None
    teacher_RV = full.reshape(-1, full.shape[-1])
    loss_P = chunked_full_rkl(
        batch.h_PH, batch.w_VH, teacher_RV, batch.rows_P, batch.config.full_position_chunk
    )
    return _PositionLosses(loss_P=loss_P, kl_P=loss_P.detach())


def _sampled_loss(batch: _Batch) -> _PositionLosses:
    """-a * log p_s(y), a = log p_t(y) - log p_s(y) detached: its gradient is the gradient of the
    single-sample reverse-KL estimate (the score-function term; E[grad log p_s] = 0)."""
    ids, teacher_lp = batch.layout.sampled_ids_NT, batch.teacher.sampled_logprobs_NT
    assert ids is not None and teacher_lp is not None
    cfg = batch.config
    y_P = ids.reshape(-1).index_select(0, batch.rows_P)
    lt_P = teacher_lp.reshape(-1).index_select(0, batch.rows_P).to(compute_dtype(batch.h_PH.dtype))
    z_P = gather_logits(batch.h_PH, batch.w_VH, y_P.unsqueeze(-1), cfg.position_chunk).squeeze(-1)
    lse_P = chunked_logsumexp(batch.h_PH, batch.w_VH, cfg.position_chunk, cfg.vocab_chunk)
    logp_s = z_P - lse_P
    advantage = (lt_P - logp_s).detach()
    return _PositionLosses(loss_P=-advantage * logp_s, kl_P=-advantage, lse_P=lse_P.detach())


_KINDS: dict[str, Callable[[_Batch], _PositionLosses]] = {
    "sva": _salient_loss,
    "student_topk": _salient_loss,
    "union": _salient_loss,
    "sva_tail": _tail_loss,
    "full_rkl": _full_loss,
    "sampled_token": _sampled_loss,
}


def _require(value: object, what: str, kind: str) -> None:
    if value is None:
        raise ValueError(f"loss kind {kind!r} needs {what}")


def _teacher_support(
    teacher: TeacherSignal, vocab: int, cfg: DistillLossConfig, dtype: torch.dtype
) -> Support | None:
    if teacher.top_ids_NTK is None or teacher.top_logprobs_NTK is None:
        return None
    support = make_support(
        teacher.top_ids_NTK, teacher.top_logprobs_NTK, vocab, cfg.excluded_ids, dtype
    )
    return truncate_support(support, cfg.k)


def _kind_support(
    teacher: TeacherSignal,
    teacher_support: Support | None,
    vocab: int,
    cfg: DistillLossConfig,
    dtype: torch.dtype,
) -> Support | None:
    """The candidate set of the salient kinds, at N x T."""
    kind = cfg.kind
    if kind in ("sva", "sva_tail", "union"):
        _require(teacher_support, "teacher.top_ids_NTK and top_logprobs_NTK", kind)
    if kind in ("sva", "sva_tail"):
        return teacher_support
    if kind in ("student_topk", "union"):
        ids, lp = teacher.student_top_ids_NTK, teacher.logprobs_on_student_top_NTK
        _require(ids, "teacher.student_top_ids_NTK and logprobs_on_student_top_NTK", kind)
        assert ids is not None and lp is not None
        student = make_support(ids, lp, vocab, cfg.excluded_ids, dtype)
        if kind == "student_topk":
            return student
        assert teacher_support is not None
        return union_support(teacher_support, student)
    return None


def _defined_positions(
    support: Support | None,
    teacher: TeacherSignal,
    layout: TokenLayout,
    vocab: int,
    cfg: DistillLossConfig,
) -> Tensor:
    """(N, T) bool: where the kind's loss is defined, before the loss mask."""
    if support is not None:
        return support.defined()
    if cfg.kind == "full_rkl":
        _require(teacher.logprobs_NTV, "teacher.logprobs_NTV", cfg.kind)
        assert teacher.logprobs_NTV is not None
        if teacher.logprobs_NTV.shape[-1] != vocab:
            raise ValueError("teacher.logprobs_NTV must span the student's vocabulary")
        return torch.ones_like(layout.loss_mask_NT, dtype=torch.bool)
    # sampled_token
    _require(layout.sampled_ids_NT, "layout.sampled_ids_NT", cfg.kind)
    _require(teacher.sampled_logprobs_NT, "teacher.sampled_logprobs_NT", cfg.kind)
    assert layout.sampled_ids_NT is not None and teacher.sampled_logprobs_NT is not None
    ids = layout.sampled_ids_NT
    return (ids >= 0) & (ids < vocab) & torch.isfinite(teacher.sampled_logprobs_NT)


def _coverage_P(
    batch: _Batch, teacher_support: Support | None, losses: _PositionLosses
) -> Tensor | None:
    """rho = sum_{u in S_teacher} p_s(u) under the full softmax, no gradient, streamed over V."""
    if not batch.config.monitor_coverage or teacher_support is None:
        return None
    cfg = batch.config
    s = teacher_support.rows(batch.rows_P)
    with torch.no_grad():
        h_PH = batch.h_PH.detach()
        z_PK = losses.teacher_logits_PK
        if z_PK is None:
            z_PK = gather_logits(h_PH, batch.w_VH.detach(), s.ids, cfg.position_chunk)
        lse_P = losses.lse_P
        if lse_P is None:
            lse_P = streaming_logsumexp(
                h_PH, batch.w_VH.detach(), cfg.position_chunk, cfg.vocab_chunk
            )
        covered = torch.logsumexp(z_PK.masked_fill(~s.valid, -torch.inf), dim=-1)
        return torch.exp(covered - lse_P)


def _metrics(
    loss: Tensor, weights: PositionWeights, losses: _PositionLosses, coverage_P: Tensor | None
) -> DistillMetrics:
    domain_loss = per_domain_means(weights, losses.loss_P)
    domain_kl = per_domain_means(weights, losses.kl_P)
    domain_cov: list[float | None] = [None] * len(weights.domains)
    overall_cov: float | None = None
    if coverage_P is not None:
        domain_cov = list(per_domain_means(weights, coverage_P))
        overall_cov = float((weights.objective_P * coverage_P).sum())
    per_domain = {
        d: DomainMetrics(
            loss=domain_loss[j],
            kl=domain_kl[j],
            coverage=domain_cov[j],
            n_samples=weights.samples_per_domain[j],
            n_tokens=weights.tokens_per_domain[j],
        )
        for j, d in enumerate(weights.domains)
    }
    return DistillMetrics(
        loss=float(loss.detach()),
        coverage=overall_cov,
        n_tokens=int(weights.objective_P.shape[0]),
        n_samples=sum(weights.samples_per_domain),
        per_domain=per_domain,
    )


def _check_positions(teacher: TeacherSignal, layout: TokenLayout, nt: tuple[int, int]) -> None:
    """Every per-position input must be (N, T, ...) like the hidden states: a mismatch would
    otherwise be flattened silently into misaligned rows."""
    named = {
        "layout.loss_mask_NT": layout.loss_mask_NT,
        "layout.sampled_ids_NT": layout.sampled_ids_NT,
        "teacher.top_ids_NTK": teacher.top_ids_NTK,
        "teacher.top_logprobs_NTK": teacher.top_logprobs_NTK,
        "teacher.sampled_logprobs_NT": teacher.sampled_logprobs_NT,
        "teacher.student_top_ids_NTK": teacher.student_top_ids_NTK,
        "teacher.logprobs_on_student_top_NTK": teacher.logprobs_on_student_top_NTK,
        "teacher.logprobs_NTV": teacher.logprobs_NTV,
    }
    for name, tensor in named.items():
        if tensor is not None and tuple(tensor.shape[:2]) != nt:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)}, expected (N, T) = {nt}")


def distill_loss(
    student: StudentHead,
    teacher: TeacherSignal,
    layout: TokenLayout,
    config: DistillLossConfig | None = None,
) -> DistillOutput:
    """The configured distillation objective (differentiable w.r.t. hidden states and the output
    layer) and per-domain monitors. See `DistillLossConfig` for the kinds and aggregations."""
    cfg = config or DistillLossConfig()
    n, t, h = student.hidden_NTH.shape
    _check_positions(teacher, layout, (n, t))
    vocab = student.vocab_size
    dtype = compute_dtype(student.hidden_NTH.dtype)
    teacher_support = _teacher_support(teacher, vocab, cfg, dtype)
    support_NT = _kind_support(teacher, teacher_support, vocab, cfg, dtype)
    trainable_NT = layout.loss_mask_NT.bool() & _defined_positions(
        support_NT, teacher, layout, vocab, cfg
    )
    rows_P = trainable_NT.reshape(-1).nonzero().squeeze(-1)
    weights = position_weights(
        rows_P // t,
        layout.sample_domain_N,
        cfg.aggregation,
        dtype,
        layout.domain_weights_D,
        layout.sample_scale_N,
    )
    batch = _Batch(
        h_PH=student.hidden_NTH.reshape(-1, h).index_select(0, rows_P),
        w_VH=student.lm_head_weight_VH,
        rows_P=rows_P,
        support=None if support_NT is None else support_NT.rows(rows_P),
        teacher=teacher,
        layout=layout,
        config=cfg,
    )
    losses = _KINDS[cfg.kind](batch)
    loss = (weights.objective_P * losses.loss_P).sum()
    coverage_P = _coverage_P(batch, teacher_support, losses)
    positions = PositionMonitors(rows_P=rows_P, kl_P=losses.kl_P, coverage_P=coverage_P)
    return DistillOutput(loss, _metrics(loss, weights, losses, coverage_P), positions)


def trainable_positions(
    teacher: TeacherSignal, layout: TokenLayout, vocab: int, config: DistillLossConfig
) -> Tensor:
    """(N, T) bool: the positions `distill_loss` trains (mask AND the kind's loss is defined);
    a trainer counts them over its whole batch before any micro-batch runs."""
    dtype = torch.float64
    teacher_support = _teacher_support(teacher, vocab, config, dtype)
    support_NT = _kind_support(teacher, teacher_support, vocab, config, dtype)
    defined = _defined_positions(support_NT, teacher, layout, vocab, config)
    return layout.loss_mask_NT.bool() & defined


def sva_loss(
    student: StudentHead,
    teacher: TeacherSignal,
    layout: TokenLayout,
    config: DistillLossConfig | None = None,
) -> DistillOutput:
    """Salient Vocabulary Alignment: `distill_loss` with kind="sva" (other settings from config)."""
    cfg = (config or DistillLossConfig()).model_copy(update={"kind": "sva"})
    return distill_loss(student, teacher, layout, cfg)
