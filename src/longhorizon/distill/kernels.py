"""Memory-bounded output-layer primitives for distillation: none of them materialises P x V logits.

All work on P flattened positions (hidden states h_PH) and the output layer w_VH:

- `gather_logits`: z[p, j] = h_p · w_{ids[p, j]}, chunked over positions (the gathered rows,
  chunk * k * H, are the only temporary); nothing but the inputs is kept for the backward, which
  uses a weighted embedding bag for the hidden-state gradient and index_add_ for the output layer
  (P * k * H would otherwise stay alive from forward to backward).
- `chunked_logsumexp`: log sum_v exp(h_p · w_v), streamed over vocabulary chunks inside position
  chunks; the backward recomputes each logits block from the saved normaliser.
- `chunked_full_rkl`: KL(p_s || p_t) over the full vocabulary, one position chunk at a time.
- `student_topk_ids`: the student's top-k ids, streamed over the vocabulary, no gradient.

Precision: matmuls run in the input dtype (bf16 on a GPU uses its tensor cores); their results are
upcast to the compute dtype (float32, or float64 for float64 inputs) before any exp/log, and the
output-layer gradient is accumulated in the compute dtype.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (tests); everything else is reduced in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


def _gathered_rows(w_VH: Tensor, ids_CK: Tensor) -> Tensor:
    """The k output-layer rows of each position: (C, K, H)."""
    c, k = ids_CK.shape
    return w_VH.index_select(0, ids_CK.reshape(-1)).view(c, k, w_VH.shape[1])


class _GatherLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h_PH: Tensor, w_VH: Tensor, ids_PK: Tensor, chunk: int) -> Tensor:
        cd = compute_dtype(h_PH.dtype)
        out_PK = torch.empty(ids_PK.shape, dtype=cd, device=h_PH.device)
        for s, e in _spans(ids_PK.shape[0], chunk):
            rows_CKH = _gathered_rows(w_VH, ids_PK[s:e])
            out_PK[s:e] = torch.bmm(rows_CKH, h_PH[s:e].unsqueeze(-1)).squeeze(-1).to(cd)
        ctx.save_for_backward(h_PH, w_VH, ids_PK)
        ctx.chunk = chunk
        return out_PK

    @staticmethod
    def backward(ctx: Any, grad_PK: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        h_PH, w_VH, ids_PK = ctx.saved_tensors
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h_PH) if need_h else None
        acc = grad_PK.dtype
        grad_w = torch.zeros(w_VH.shape, dtype=acc, device=w_VH.device) if need_w else None
        for s, e in _spans(ids_PK.shape[0], ctx.chunk):
            g_CK = grad_PK[s:e]
            if grad_h is not None:
                # sum_j g[p, j] * w[ids[p, j]]: a weighted embedding bag, no (C, K, H) temporary.
                grad_h[s:e] = F.embedding_bag(
                    ids_PK[s:e], w_VH, mode="sum", per_sample_weights=g_CK.to(w_VH.dtype)
                )
            if grad_w is not None:
                # Outer product per (position, id); repeated ids add up in index_add_.
                contrib = g_CK.unsqueeze(-1) * h_PH[s:e].to(g_CK.dtype).unsqueeze(1)
                grad_w.index_add_(0, ids_PK[s:e].reshape(-1), contrib.reshape(-1, h_PH.shape[1]))
        return grad_h, None if grad_w is None else grad_w.to(w_VH.dtype), None, None


def gather_logits(h_PH: Tensor, w_VH: Tensor, ids_PK: Tensor, chunk: int = 128) -> Tensor:
    """Student logits on given ids only, (P, K) in the compute dtype; ids must be in [0, V)."""
    return _GatherLogits.apply(h_PH, w_VH, ids_PK, chunk)


def _accumulate(out: Tensor, a: Tensor, b: Tensor) -> None:
    """out += a @ b. In place when the dtypes agree (float32/float64): a V x H temporary per
    chunk would double the memory traffic of the output-layer gradient. Low-precision inputs
    multiply in their own dtype (tensor cores) and add into the float32 buffer."""
    if a.dtype == out.dtype and b.dtype == out.dtype:
        out.addmm_(a, b)
    else:
        out += a @ b


def _logits_block(h_CH: Tensor, w_BH: Tensor, cd: torch.dtype) -> Tensor:
    return (h_CH @ w_BH.T).to(cd)


def streaming_logsumexp(
    h_PH: Tensor, w_VH: Tensor, position_chunk: int = 128, vocab_chunk: int = 16384
) -> Tensor:
    """log sum_v exp(h_p · w_v) without gradient; memory ~ position_chunk * vocab_chunk."""
    cd = compute_dtype(h_PH.dtype)
    lse_P = torch.empty(h_PH.shape[0], dtype=cd, device=h_PH.device)
    with torch.no_grad():
        for s, e in _spans(h_PH.shape[0], position_chunk):
            running = torch.full((e - s,), -torch.inf, dtype=cd, device=h_PH.device)
            for vs, ve in _spans(w_VH.shape[0], vocab_chunk):
                block = _logits_block(h_PH[s:e], w_VH[vs:ve], cd)
                running = torch.logaddexp(running, torch.logsumexp(block, dim=-1))
            lse_P[s:e] = running
    return lse_P


class _ChunkedLogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, h_PH: Tensor, w_VH: Tensor, position_chunk: int, vocab_chunk: int
    ) -> Tensor:
        lse_P = streaming_logsumexp(h_PH, w_VH, position_chunk, vocab_chunk)
        ctx.save_for_backward(h_PH, w_VH, lse_P)
        ctx.chunks = (position_chunk, vocab_chunk)
        return lse_P

    @staticmethod
    def backward(ctx: Any, grad_P: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:
        h_PH, w_VH, lse_P = ctx.saved_tensors
        position_chunk, vocab_chunk = ctx.chunks
        cd = lse_P.dtype
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.zeros(h_PH.shape, dtype=cd, device=h_PH.device) if need_h else None
        grad_w = torch.zeros(w_VH.shape, dtype=cd, device=w_VH.device) if need_w else None
        for s, e in _spans(h_PH.shape[0], position_chunk):
            h_CH = h_PH[s:e]
            for vs, ve in _spans(w_VH.shape[0], vocab_chunk):
                # d lse / d z = softmax(z): recomputed per block from the saved normaliser.
                block = _logits_block(h_CH, w_VH[vs:ve], cd)
                g_CB = (torch.exp(block - lse_P[s:e, None]) * grad_P[s:e, None]).to(w_VH.dtype)
                if grad_h is not None:
                    _accumulate(grad_h[s:e], g_CB, w_VH[vs:ve])
                if grad_w is not None:
                    _accumulate(grad_w[vs:ve], g_CB.T, h_CH)
        return (
            None if grad_h is None else grad_h.to(h_PH.dtype),
            None if grad_w is None else grad_w.to(w_VH.dtype),
            None,
            None,
        )


def chunked_logsumexp(
    h_PH: Tensor, w_VH: Tensor, position_chunk: int = 128, vocab_chunk: int = 16384
) -> Tensor:
    """The student's full-vocabulary log-normaliser per position, differentiable, never P x V."""
    return _ChunkedLogSumExp.apply(h_PH, w_VH, position_chunk, vocab_chunk)


def _rkl_block(
    h_CH: Tensor, w_VH: Tensor, teacher_CV: Tensor, cd: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """Student log-softmax, teacher logprobs and per-position KL(p_s || p_t) for one chunk."""
    logp_s = torch.log_softmax(_logits_block(h_CH, w_VH, cd), dim=-1)
    logp_t = teacher_CV.to(cd)
    kl_C = (logp_s.exp() * (logp_s - logp_t)).sum(-1)
    return logp_s, logp_t, kl_C


class _ChunkedFullRKL(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, h_PH: Tensor, w_VH: Tensor, teacher_RV: Tensor, rows_P: Tensor, chunk: int
    ) -> Tensor:
        cd = compute_dtype(h_PH.dtype)
        kl_P = torch.empty(h_PH.shape[0], dtype=cd, device=h_PH.device)
        with torch.no_grad():
            for s, e in _spans(h_PH.shape[0], chunk):
                teacher_CV = teacher_RV.index_select(0, rows_P[s:e])
                kl_P[s:e] = _rkl_block(h_PH[s:e], w_VH, teacher_CV, cd)[2]
        ctx.save_for_backward(h_PH, w_VH, teacher_RV, rows_P, kl_P)
        ctx.chunk = chunk
        return kl_P

    @staticmethod
    def backward(ctx: Any, grad_P: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        h_PH, w_VH, teacher_RV, rows_P, kl_P = ctx.saved_tensors
        cd = kl_P.dtype
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_h = torch.empty_like(h_PH) if need_h else None
        grad_w = torch.zeros(w_VH.shape, dtype=cd, device=w_VH.device) if need_w else None
        for s, e in _spans(h_PH.shape[0], ctx.chunk):
            teacher_CV = teacher_RV.index_select(0, rows_P[s:e])
            logp_s, logp_t, _ = _rkl_block(h_PH[s:e], w_VH, teacher_CV, cd)
            # d KL / d z_j = p_j * (log p_j - log q_j - KL)
            g_CV = logp_s.exp() * (logp_s - logp_t - kl_P[s:e, None]) * grad_P[s:e, None]
            if grad_h is not None:
                grad_h[s:e] = g_CV.to(w_VH.dtype) @ w_VH
            if grad_w is not None:
                _accumulate(grad_w, g_CV.T.to(w_VH.dtype), h_PH[s:e])
        return grad_h, None if grad_w is None else grad_w.to(w_VH.dtype), None, None, None


def chunked_full_rkl(
    h_PH: Tensor, w_VH: Tensor, teacher_logprobs_RV: Tensor, rows_P: Tensor, chunk: int = 128
) -> Tensor:
    """KL(p_s || p_t) per position; position p uses teacher row rows_P[p] (rows are never copied
    all at once, so the teacher tensor can stay N*T x V while only P positions are trained)."""
    return _ChunkedFullRKL.apply(h_PH, w_VH, teacher_logprobs_RV, rows_P, chunk)


def student_topk_ids(
    hidden_NTH: Tensor,
    lm_head_weight_VH: Tensor,
    k: int,
    *,
    mask_NT: Tensor | None = None,
    excluded_ids: Sequence[int] = (),
    position_chunk: int = 128,
    vocab_chunk: int = 16384,
) -> Tensor:
    """The student's top-k ids per position (N, T, k), int64, streamed over the vocabulary.

    Excluded ids never enter; positions outside `mask_NT` (and slots beyond the number of
    eligible ids) are -1, which the losses treat as padding. No gradient.
    """
    n, t, h = hidden_NTH.shape
    v = lm_head_weight_VH.shape[0]
    device = hidden_NTH.device
    cd = compute_dtype(hidden_NTH.dtype)
    out = torch.full((n * t, k), -1, dtype=torch.int64, device=device)
    rows = torch.arange(n * t, device=device)
    if mask_NT is not None:
        rows = rows[mask_NT.reshape(-1).bool()]
    excluded = torch.zeros(v, dtype=torch.bool, device=device)
    ex = [i for i in excluded_ids if 0 <= i < v]
    excluded[torch.tensor(ex, dtype=torch.int64, device=device)] = True
    flat_H = hidden_NTH.reshape(-1, h)
    with torch.no_grad():
        for s, e in _spans(rows.shape[0], position_chunk):
            h_CH = flat_H.index_select(0, rows[s:e])
            best_vals = torch.full((e - s, k), -torch.inf, dtype=cd, device=device)
            best_ids = torch.full((e - s, k), -1, dtype=torch.int64, device=device)
            for vs, ve in _spans(v, vocab_chunk):
                block = _logits_block(h_CH, lm_head_weight_VH[vs:ve], cd)
                block.masked_fill_(excluded[vs:ve], -torch.inf)
                vals, ids = block.topk(min(k, ve - vs), dim=-1)
                vals = torch.cat([best_vals, vals], dim=-1)
                ids = torch.cat([best_ids, ids + vs], dim=-1)
                best_vals, pick = vals.topk(k, dim=-1)
                best_ids = ids.gather(-1, pick)
            out[rows[s:e]] = best_ids.masked_fill(best_vals == -torch.inf, -1)
    return out.view(n, t, k)
