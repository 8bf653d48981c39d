"""Cross-entropy from final hidden states and the output layer, chunked over positions.

CE_p = logsumexp_v(h_p · w_v) - h_p · w_{y_p}, for P trained positions (h_PH) and the output
layer w_VH. Only one chunk of logits (C x V) exists at a time, in the forward and in the
backward: the forward keeps nothing but its inputs and the normaliser lse_P, and the backward
recomputes each chunk's logits, turns them into softmax - onehot in place and multiplies into
the two gradients. At T = 32K trained positions and V = 49,152 the materialised loss holds
three T x V float32 tensors (6.4 GB each); this holds one C x V block at a time
(bench/sft_loss_memory.py).

Precision: the matmuls run in `matmul_dtype` (bf16 under autocast: the tensor cores), their
results are upcast to float32 (float64 for float64 inputs) before any exp or log, and the
output-layer gradient is accumulated in that dtype.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

DEFAULT_CHUNK = 1024  # positions per chunk: 1024 x 49,152 float32 logits = 200 MB


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64 (reference tests); everything else is reduced in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _spans(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(start + size, total)


def _chunk_logits(h_CH: Tensor, w_VH: Tensor, cd: torch.dtype) -> Tensor:
    """(C, V) logits in the compute dtype; h and w already hold the matmul dtype."""
    return (h_CH @ w_VH.T).to(cd)


def _forward_chunk(
    h_CH: Tensor, w_VH: Tensor, targets_C: Tensor, cd: torch.dtype
) -> tuple[Tensor, Tensor]:
    """(CE, logsumexp) of one chunk; its logits die on return, before the next chunk's exist."""
    z_CV = _chunk_logits(h_CH, w_VH, cd)
    picked_C = z_CV.gather(1, targets_C[:, None]).squeeze(1)
    # logsumexp in place: torch.logsumexp would hold a second C x V block.
    max_C = z_CV.amax(dim=-1)
    lse_C = z_CV.sub_(max_C[:, None]).exp_().sum(dim=-1).log_() + max_C
    return lse_C - picked_C, lse_C


def _backward_chunk(
    h_CH: Tensor, w_VH: Tensor, targets_C: Tensor, lse_C: Tensor, grad_C: Tensor
) -> Tensor:
    """d loss / d logits of one chunk, (softmax - onehot) * grad, in the matmul dtype."""
    g_CV = _chunk_logits(h_CH, w_VH, lse_C.dtype).sub_(lse_C[:, None]).exp_()
    g_CV[torch.arange(len(targets_C), device=g_CV.device), targets_C] -= 1
    return g_CV.mul_(grad_C[:, None].to(g_CV.dtype)).to(w_VH.dtype)


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        h_PH: Tensor,
        w_VH: Tensor,
        targets_P: Tensor,
        chunk: int,
        matmul_dtype: torch.dtype,
    ) -> Tensor:
        cd = _compute_dtype(h_PH.dtype)
        w_md = w_VH.to(matmul_dtype)  # one cast of the layer, not one per chunk
        loss_P = torch.empty(h_PH.shape[0], dtype=cd, device=h_PH.device)
        lse_P = torch.empty_like(loss_P)
        for s, e in _spans(h_PH.shape[0], chunk):
            h_CH = h_PH[s:e].to(matmul_dtype)
            loss_P[s:e], lse_P[s:e] = _forward_chunk(h_CH, w_md, targets_P[s:e], cd)
        ctx.save_for_backward(h_PH, w_VH, targets_P, lse_P)
        ctx.chunk, ctx.matmul_dtype = chunk, matmul_dtype
        return loss_P

    @staticmethod
    def backward(ctx: Any, grad_P: Tensor) -> tuple[Tensor | None, Tensor | None, None, None, None]:
        h_PH, w_VH, targets_P, lse_P = ctx.saved_tensors
        md, cd = ctx.matmul_dtype, lse_P.dtype
        need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w_md = w_VH.to(md)
        grad_h = torch.empty_like(h_PH) if need_h else None
        grad_w = torch.zeros(w_VH.shape, dtype=cd, device=w_VH.device) if need_w else None
        for s, e in _spans(h_PH.shape[0], ctx.chunk):
            h_CH = h_PH[s:e].to(md)
            g_CV = _backward_chunk(h_CH, w_md, targets_P[s:e], lse_P[s:e], grad_P[s:e])
            if grad_h is not None:
                grad_h[s:e] = (g_CV @ w_md).to(h_PH.dtype)
            if grad_w is not None:
                _add_product(grad_w, g_CV.T, h_CH)
            del g_CV  # before the next chunk's logits are built
        if grad_w is None:
            return grad_h, None, None, None, None
        return grad_h, grad_w.to(w_VH.dtype), None, None, None


def _add_product(out: Tensor, a: Tensor, b: Tensor) -> None:
    """out += a @ b, in place when the dtypes agree (no V x H temporary per chunk)."""
    if a.dtype == out.dtype and b.dtype == out.dtype:
        out.addmm_(a, b)
    else:
        out += a @ b


def chunked_cross_entropy(
    h_PH: Tensor,
    w_VH: Tensor,
    targets_P: Tensor,
    chunk: int = DEFAULT_CHUNK,
    matmul_dtype: torch.dtype | None = None,
) -> Tensor:
    """CE of each position's target under softmax(h_p · w), (P,), never building P x V.

    Differentiable in `h_PH` and `w_VH`; targets must lie in [0, V). `matmul_dtype` defaults to
    the hidden states' dtype."""
    if h_PH.dim() != 2 or w_VH.dim() != 2 or h_PH.shape[1] != w_VH.shape[1]:
        raise ValueError(
            f"hidden states (P, H) and output layer (V, H) expected, got {tuple(h_PH.shape)} "
            f"and {tuple(w_VH.shape)}"
        )
    if targets_P.shape != h_PH.shape[:1]:
        raise ValueError(f"{targets_P.shape[0]} targets for {h_PH.shape[0]} positions")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if targets_P.numel() and not 0 <= int(targets_P.min()) <= int(targets_P.max()) < len(w_VH):
        raise ValueError(f"targets must lie in [0, {len(w_VH)}) (the output layer's rows)")
    md = matmul_dtype or h_PH.dtype
    with torch.autocast(h_PH.device.type, enabled=False):  # dtypes are chosen explicitly here
        loss: Tensor = _ChunkedCrossEntropy.apply(h_PH, w_VH, targets_P, chunk, md)
    return loss
