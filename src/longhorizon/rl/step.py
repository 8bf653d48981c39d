"""GRPO optimizer updates: the batch objective over micro-batches and ranks, clip, step.

The aggregation weights (`objective.token_scales`) come from the trained-token counts of the
whole batch before any forward pass (each rank counts its share, the counts are summed over
ranks), and each micro-batch's loss carries them: the micro-batch losses add up, over
micro-batches and ranks, to exactly the batch objective, and so do their gradients (summed over
ranks before the clip and the step).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from longhorizon.distill.kernels import compute_dtype
from longhorizon.rl.config import GRPOObjective
from longhorizon.rl.objective import (
    clip_fractions,
    clipped_surrogate,
    k3_kl,
    token_scales,
    truncated_is_weights,
)
from longhorizon.rl.samples import RLSample
from longhorizon.training.distributed import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    clip_gradients,
    idle_passes,
    sum_gradients,
    sum_scale,
)
from longhorizon.training.modeling import autocast_context

__all__ = [
    "RLBatch",
    "accumulate_gradients",
    "build_batch",
    "merge_updates",
    "optimizer_update",
    "with_trainer_logprobs",
]

# Token-summed monitors of a micro-batch, per domain (divided by `tokens` when logged).
SUMS = ("clip_low", "clip_high", "kl", "entropy", "engine_kl", "tokens", "samples")


@dataclass(frozen=True)
class RLBatch:
    """Padded micro-batch; per-position tensors are shifted (row t predicts token t + 1)."""

    input_ids_NT: Tensor
    attention_NT: Tensor
    mask_NT: Tensor
    engine_logp_NT: Tensor
    adv_N: Tensor
    scale_N: Tensor
    domains: list[str]
    trainer_logp_NT: Tensor | None = None  # pi_old before the step's updates (several a step)


def build_batch(
    samples: list[RLSample],
    pad_id: int,
    scale_N: Tensor,
    dtype: torch.dtype,
    device: torch.device | None = None,
) -> RLBatch:
    n, width = len(samples), max(len(s.input_ids) for s in samples)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    mask = torch.zeros((n, width - 1), dtype=dtype)
    engine = torch.zeros((n, width - 1), dtype=dtype)
    for i, s in enumerate(samples):
        length = len(s.input_ids)
        ids[i, :length] = torch.tensor(s.input_ids)
        attention[i, :length] = 1
        mask[i, : length - 1] = torch.tensor(s.loss_mask[1:], dtype=dtype)
        engine[i, : length - 1] = torch.tensor(s.engine_logprobs[1:], dtype=dtype)
    adv = torch.tensor([s.advantage for s in samples], dtype=dtype)
    domains = [s.domain for s in samples]
    trainer = None
    if all(s.trainer_logprobs is not None for s in samples):
        trainer = torch.zeros((n, width - 1), dtype=dtype)
        for i, s in enumerate(samples):
            given = s.trainer_logprobs or []
            trainer[i, : len(s.input_ids) - 1] = torch.tensor(given[1:], dtype=dtype)
        trainer = trainer.to(device)
    return RLBatch(
        ids.to(device),
        attention.to(device),
        mask.to(device),
        engine.to(device),
        adv.to(device),
        scale_N.to(device=device, dtype=dtype),
        domains,
        trainer,
    )


def _logprobs(
    model: nn.Module, batch: RLBatch, autocast: torch.dtype | None = None
) -> tuple[Tensor, Tensor]:
    """Sampled-token logprobs and full-distribution entropies, (N, T - 1) each; the model runs
    under `autocast`, the log-softmax in float32 (float64 for float64 logits) outside it.

    Materialises the N x T x V log-softmax (the entropy needs every logit): fine for the tiny
    and 135M models on CPU; long sequences of large-vocabulary models want a chunked pass.
    """
    with autocast_context(batch.input_ids_NT.device, autocast):
        out = model(input_ids=batch.input_ids_NT, attention_mask=batch.attention_NT)
    logits = out.logits[:, :-1]
    logp_all = torch.log_softmax(logits.to(compute_dtype(logits.dtype)), dim=-1)
    logp = logp_all.gather(-1, batch.input_ids_NT[:, 1:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


def micro_batch_loss(
    model: nn.Module,
    reference: nn.Module | None,
    batch: RLBatch,
    objective: GRPOObjective,
    autocast: torch.dtype | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The micro-batch's share of the batch loss and its per-sample monitor sums; the policy's
    and the reference's forward passes run under `autocast`."""
    logp, entropy = _logprobs(model, batch, autocast)
    # The trainer's logprobs the engine is compared with: before the step's first update.
    trainer = logp.detach() if batch.trainer_logp_NT is None else batch.trainer_logp_NT
    if objective.tis_cap is None:
        old, weight = batch.engine_logp_NT, torch.ones_like(logp)
    else:  # the trainer's pi_old: before the step's first update (the current policy if one)
        old = trainer
        weight = truncated_is_weights(old, batch.engine_logp_NT, objective.tis_cap)
    adv = batch.adv_N[:, None].expand_as(logp)
    surr = clipped_surrogate(logp, old, adv, objective.clip_low, objective.clip_high)
    kl = torch.zeros_like(logp)
    if reference is not None:
        with torch.no_grad():
            ref, _ = _logprobs(reference, batch, autocast)
        kl = k3_kl(logp, ref)
    per_token = weight * surr + objective.kl_coef * kl - objective.entropy_coef * entropy
    mask = batch.mask_NT
    loss = (per_token * mask * batch.scale_N[:, None]).sum()
    low, high = clip_fractions(logp.detach(), old, adv, objective.clip_low, objective.clip_high)
    sums = {
        "clip_low": (low * mask).sum(1),
        "clip_high": (high * mask).sum(1),
        "kl": (kl.detach() * mask).sum(1),
        "entropy": (entropy.detach() * mask).sum(1),
        "engine_kl": ((batch.engine_logp_NT - trainer) * mask).sum(1),  # k1 of KL(eng||tr)
        "tokens": mask.sum(1),
        "samples": torch.ones_like(batch.adv_N),
    }
    return loss, sums


@torch.no_grad()
def with_trainer_logprobs(
    model: nn.Module,
    samples: list[RLSample],
    micro_batch_size: int,
    pad_id: int,
    autocast: torch.dtype | None = None,
) -> list[RLSample]:
    """`samples` with the model's own logprobs of their tokens (`trainer_logprobs`), read
    before a step's first update: pi_old under truncated IS, and what the engine-vs-trainer KL
    compares with. `model` is a whole module (no collective), so each rank scores only the
    samples it will train on."""
    first = next(model.parameters())
    model.eval()
    out: list[RLSample] = []
    for lo, hi in _spans(len(samples), micro_batch_size):
        part = samples[lo:hi]
        scale = torch.zeros(len(part))
        batch = build_batch(part, pad_id, scale, first.dtype, first.device)
        logp, _ = _logprobs(model, batch, autocast)
        for i, s in enumerate(part):
            row = logp[i, : len(s.input_ids) - 1].tolist()
            out.append(replace(s, trainer_logprobs=[0.0, *row]))
    return out


def _spans(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


def accumulate_gradients(
    model: nn.Module,
    reference: nn.Module | None,
    samples: list[RLSample],
    objective: GRPOObjective,
    micro_batch_size: int,
    pad_id: int,
    env: DistEnv | None = None,
    autocast: torch.dtype | None = None,
) -> dict[str, Any]:
    """Backward of the batch objective into `.grad`; returns its value and per-domain monitors.

    `samples` are this rank's share of the batch (all of it in one process); with `env`, the
    normalisers, the gradients, the loss and the monitors are summed over ranks."""
    first = next(model.parameters())
    reduce = None if env is None else lambda counts: all_reduce_sum(counts, env)
    tokens_N = torch.tensor([sum(s.loss_mask[1:]) for s in samples], dtype=torch.float64)
    scale_N = token_scales(tokens_N, objective.aggregation, reduce)
    total = 0.0
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0.0))
    spans = list(_spans(len(samples), micro_batch_size))
    idle_passes(model, len(spans), env)
    for lo, hi in spans:
        batch = build_batch(samples[lo:hi], pad_id, scale_N[lo:hi], first.dtype, first.device)
        loss, parts = micro_batch_loss(model, reference, batch, objective, autocast)
        (loss * sum_scale(env)).backward()
        total += float(loss.detach())
        for key, values in parts.items():
            for domain, value in zip(batch.domains, values.tolist(), strict=True):
                sums[domain][key] += value
    if env is not None:
        sum_gradients(model, env)
        (total,) = all_reduce_sum([total], env)
        sums = _sum_over_ranks(sums, env)
    return {"loss": total, "domains": {d: _means(s) for d, s in sorted(sums.items())}}


def _sum_over_ranks(sums: dict[str, dict[str, float]], env: DistEnv) -> dict[str, dict[str, float]]:
    """Per-domain monitor sums added over ranks (a rank may lack a domain, or every one)."""
    total: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0.0))
    for part in all_gather_objects(dict(sums), env):
        for domain, values in part.items():
            for key, value in values.items():
                total[domain][key] += value
    return total


MEANS = ("clip_low", "clip_high", "kl", "entropy", "engine_kl")  # logged per trained token


def _means(sums: dict[str, float]) -> dict[str, float]:
    tokens = max(sums["tokens"], 1.0)
    out = {k: sums[k] / tokens for k in MEANS}
    return out | {"tokens": sums["tokens"], "samples": sums["samples"]}


def optimizer_update(
    model: nn.Module,
    reference: nn.Module | None,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    samples: list[RLSample],
    objective: GRPOObjective,
    micro_batch_size: int,
    pad_id: int,
    max_grad_norm: float | None,
    env: DistEnv | None = None,
    autocast: torch.dtype | None = None,
) -> dict[str, Any]:
    """One optimizer step on the batch objective (`samples`: this rank's share); returns loss,
    lr, grad norm and monitors, all of the whole batch."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    lr = scheduler.get_last_lr()[0]
    record = accumulate_gradients(
        model, reference, samples, objective, micro_batch_size, pad_id, env, autocast
    )
    norm = clip_gradients(model, max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": record["loss"], "lr": lr, "grad_norm": norm, **record}


def merge_updates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One log record for a step's updates: the mean loss and grad norm, the last lr, and
    per domain the monitors' token-weighted means and the trained tokens and samples summed."""
    if len(records) == 1:
        return {**records[0], "updates": 1}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(SUMS, 0.0))
    for r in records:
        for domain, m in r["domains"].items():
            for key in SUMS:
                sums[domain][key] += m[key] * (m["tokens"] if key in MEANS else 1.0)
    return {
        "loss": sum(r["loss"] for r in records) / len(records),
        "lr": records[-1]["lr"],
        "grad_norm": sum(r["grad_norm"] for r in records) / len(records),
        "updates": len(records),
        "domains": {d: _means(s) for d, s in sorted(sums.items())},
    }
