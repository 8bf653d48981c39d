"""The SFT loss of one micro-batch, normalised over the whole optimizer step.

`token`: sum of token losses / trained tokens of the step (all micro-batches, all ranks).
`sample`: sum over samples of (sample's mean token loss) / samples of the step.
Both are sum_t c_t * l_t / D with c_t = 1 or 1 / n_sample and D = the step's global count, so
accumulating micro-batch losses gives exactly the full-batch loss and gradient. DDP and FSDP2
average gradients over ranks; the caller multiplies by the world size to undo that mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from longhorizon.training.chunked_ce import chunked_cross_entropy
from longhorizon.training.modeling import at_output_layer, autocast_context
from longhorizon.training.packing import IGNORE, MicroBatch


def step_denominator(batches: list[MicroBatch], normalisation: str) -> float:
    """This rank's share of the step's normaliser (all-reduce it across ranks)."""
    if normalisation == "token":
        return float(sum(b.num_trainable for b in batches))
    return float(sum(b.num_trained_samples for b in batches))


def forward_logits(
    model: nn.Module, batch: MicroBatch, device: torch.device, keep: Tensor
) -> Tensor:
    """Logits at the `keep` positions only: the rest of the T x V matrix is never built."""
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    out = model(
        input_ids=batch.input_ids.to(device),
        position_ids=batch.position_ids.to(device),
        attention_mask=mask,
        logits_to_keep=keep.to(device),
        use_cache=False,
    )
    return out.logits[0]


def materialised_losses(
    model: nn.Module, batch: MicroBatch, device: torch.device, keep: Tensor, targets: Tensor
) -> Tensor:
    """CE at the `keep` positions from their P x V logits (the reference path)."""
    logits = forward_logits(model, batch, device, keep)
    if logits.dtype in (torch.bfloat16, torch.float16):
        logits = logits.float()  # log-softmax in full precision
    return F.cross_entropy(logits, targets, reduction="none", ignore_index=IGNORE)


def chunked_losses(
    model: nn.Module,
    batch: MicroBatch,
    device: torch.device,
    keep: Tensor,
    targets: Tensor,
    chunk: int,
    matmul_dtype: torch.dtype | None = None,
) -> Tensor:
    """CE at the `keep` positions by `chunked_cross_entropy`: no P x V logits, forward or
    backward; computed at the output layer's input (`at_output_layer`). Ignored targets read
    row 0 (their scale is 0)."""
    ids = targets.clamp(min=0)
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    return at_output_layer(
        model,
        lambda h, w_VH: chunked_cross_entropy(h[0], w_VH, ids, chunk, matmul_dtype),
        input_ids=batch.input_ids.to(device),
        position_ids=batch.position_ids.to(device),
        attention_mask=mask,
        logits_to_keep=keep.to(device),
    )


@dataclass(frozen=True)
class MicroLoss:
    """The micro-batch's share of the step loss, and its token losses (detached, for logs)."""

    loss: Tensor
    token_losses: Tensor  # CE at the trained positions, in position order
    positions: Tensor  # those positions in the row


def micro_batch_loss(
    model: nn.Module,
    batch: MicroBatch,
    denominator: float,
    normalisation: str,
    device: torch.device,
    autocast_dtype: torch.dtype | None = None,
    chunk_size: int | None = None,
) -> MicroLoss:
    """sum_t c_t * CE(logits_t, label_t) / denominator over this micro-batch's trained positions.

    `chunk_size`: positions per output-layer chunk (`chunked_losses`); None builds the trained
    positions' logits at once (`materialised_losses`, the reference)."""
    labels = batch.labels[0]
    keep = (labels != IGNORE).nonzero().squeeze(1)
    if keep.numel() == 0:  # a padding micro-batch: keep one position so every weight gets a grad
        keep = torch.zeros(1, dtype=torch.long)
    targets = labels[keep].to(device)
    with autocast_context(device, autocast_dtype):
        if chunk_size is None:
            losses = materialised_losses(model, batch, device, keep, targets)
        else:
            losses = chunked_losses(model, batch, device, keep, targets, chunk_size, autocast_dtype)
    scale = batch.token_scale(normalisation)[0, keep].to(device=device, dtype=losses.dtype)
    loss = (losses * scale).sum() / max(denominator, 1.0)
    trained = labels[keep] != IGNORE
    return MicroLoss(loss, losses.detach()[trained.to(device)].cpu(), keep[trained])


def domain_loss_sums(batch: MicroBatch, part: MicroLoss, domains: list[str]) -> list[float]:
    """[token-loss sum, token count] per domain (in `domains` order), for per-domain logs."""
    sums = [0.0] * (2 * len(domains))
    owners = batch.sample_ids[0, part.positions].tolist()
    for owner, value in zip(owners, part.token_losses.tolist(), strict=True):
        d = domains.index(batch.domains[owner])
        sums[2 * d] += value
        sums[2 * d + 1] += 1
    return sums
