"""The GRPO objective as pure functions over tensors (no model, no batch layout).

Per trained token t of a rollout with advantage A (log-probabilities of the sampled token):
    r_t      = exp(logp_t - logp_old_t)                          importance ratio
    surr_t   = -min(r_t A, clip(r_t, 1 - clip_low, 1 + clip_high) A)    asymmetric clip (DAPO)
    w_t      = min(exp(logp_trainer_t - logp_engine_t), tis_cap)  truncated IS (engine != trainer)
    k3_t     = exp(ref_t - logp_t) - (ref_t - logp_t) - 1         KL(pi || pi_ref), k3 estimator
    H_t      = entropy of the policy's full distribution at t
    loss_t   = w_t surr_t + kl_coef k3_t - entropy_coef H_t
The batch loss is sum_t scale_t loss_t, with `token_scales` fixing the aggregation over the
whole batch (token-mean or sequence-mean, counted over every rank), so neither micro-batching
nor the number of ranks changes the gradient.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = [
    "clip_fractions",
    "clipped_surrogate",
    "entropy_from_logits",
    "group_advantages",
    "k3_kl",
    "papo_advantages",
    "token_scales",
    "truncated_is_weights",
]


def group_advantages(
    rewards_G: Tensor, valid_G: Tensor | None = None, eps: float = 1e-6, scale_by_std: bool = True
) -> Tensor:
    """(r - mean) / (std + eps) over the group's valid samples; invalid ones get 0.

    std is the unbiased one (as TRL and verl); a group whose valid rewards are all equal (or
    with fewer than two valid samples) has zero advantage everywhere: it teaches nothing.
    """
    valid_G = torch.ones_like(rewards_G, dtype=torch.bool) if valid_G is None else valid_G
    kept = rewards_G[valid_G]
    if kept.numel() < 2:
        return torch.zeros_like(rewards_G)
    centred = rewards_G - kept.mean()
    if scale_by_std:
        centred = centred / (kept.std() + eps)
    if torch.all(kept == kept[0]):
        centred = torch.zeros_like(rewards_G)
    return torch.where(valid_G, centred, torch.zeros_like(centred))


def papo_advantages(
    outcome_G: Tensor,
    process_G: Tensor,
    valid_G: Tensor | None = None,
    process_weight: float = 0.5,
    eps: float = 1e-6,
) -> Tensor:
    """PAPO (tool calling): A = A_out + process_weight * 1[failed] * A_proc.

    A_out normalises the 0/1 outcome over the group's valid samples (as GRPO); A_proc
    normalises the process reward (fraction of rubric checks satisfied) over the valid FAILED
    samples only, so among failures the better process is pushed up; passed and invalid
    samples get no process term.
    """
    valid_G = torch.ones_like(outcome_G, dtype=torch.bool) if valid_G is None else valid_G
    a_out = group_advantages(outcome_G, valid_G, eps)
    failed_G = valid_G & (outcome_G <= 0)
    a_proc = group_advantages(process_G, failed_G, eps)
    return a_out + process_weight * a_proc


def clipped_surrogate(
    logp_T: Tensor, old_logp_T: Tensor, adv_T: Tensor, clip_low: float, clip_high: float
) -> Tensor:
    """-min(r A, clip(r, 1 - clip_low, 1 + clip_high) A) per token (to be minimised)."""
    ratio = torch.exp(logp_T - old_logp_T)
    clipped = ratio.clamp(1 - clip_low, 1 + clip_high)
    return -torch.minimum(ratio * adv_T, clipped * adv_T)


def clip_fractions(
    logp_T: Tensor, old_logp_T: Tensor, adv_T: Tensor, clip_low: float, clip_high: float
) -> tuple[Tensor, Tensor]:
    """Per-token 0/1: the low clip is active (r < 1 - clip_low, A < 0), the high one (r > 1 +
    clip_high, A > 0); where active the token's gradient is zero."""
    ratio = torch.exp(logp_T - old_logp_T)
    low = (ratio < 1 - clip_low) & (adv_T < 0)
    high = (ratio > 1 + clip_high) & (adv_T > 0)
    return low.to(logp_T.dtype), high.to(logp_T.dtype)


def k3_kl(logp_T: Tensor, ref_logp_T: Tensor) -> Tensor:
    """exp(d) - d - 1 with d = ref - logp: unbiased for KL(pi || pi_ref) under pi, always >= 0."""
    d = ref_logp_T - logp_T
    return torch.exp(d) - d - 1


def entropy_from_logits(logits_TV: Tensor) -> Tensor:
    """H = logsumexp(z) - sum softmax(z) z, per row."""
    p = torch.softmax(logits_TV, dim=-1)
    return torch.logsumexp(logits_TV, dim=-1) - (p * logits_TV).sum(-1)


def truncated_is_weights(trainer_logp_T: Tensor, engine_logp_T: Tensor, cap: float) -> Tensor:
    """min(pi_trainer / pi_engine, cap) per token (no gradient): corrects for a sampler whose
    numbers differ from the trainer's (vLLM kernels, bf16), capped to bound the variance."""
    return torch.exp(trainer_logp_T - engine_logp_T).clamp(max=cap).detach()


def token_scales(
    tokens_N: Tensor, aggregation: str, reduce: Callable[[list[float]], list[float]] | None = None
) -> Tensor:
    """Weight of each token of sequence n in the batch loss, from the trained-token counts of
    EVERY sequence of the batch: token-mean 1/sum(tokens); sequence-mean 1/(N tokens_n).

    `reduce` sums the two counts over ranks when `tokens_N` holds only this rank's share."""
    tokens = tokens_N.to(torch.float64)
    kept = tokens > 0
    local = [float(tokens.sum()), float(kept.sum())]
    total, sequences = reduce(local) if reduce else local
    if aggregation == "token":
        return torch.full_like(tokens, 1.0 / max(total, 1.0))
    if aggregation == "sequence":
        n = max(sequences, 1.0)
        return torch.where(kept, 1.0 / (n * tokens.clamp(min=1)), torch.zeros_like(tokens))
    raise ValueError(f"unknown aggregation {aggregation!r}: token or sequence")
