"""Aggregation of per-position losses into the batch objective, as per-position weights.

Every loss kind produces one value per trainable position; the objective is sum_p w_p * loss_p, so
the three aggregations differ only in the weights (computed once, without gradient):

    token   w_p = 1 / P
    sample  w_p = 1 / (|R_i| * #samples)                     (mean of per-sample means)
    domain  w_p = 1 / (|R_i| * |B_d| * |D_B|)                (the spec's domain-normalised loss)

With domain weights a_d (default 1: the spec), the domain aggregation becomes
w_p = a_d / (|R_i| * |B_d| * sum_{d' in D_B} a_d'): a weighted mean of the domain means.

where i is the sample of position p, d its domain, |R_i| its trainable positions, |B_d| the samples
of domain d with at least one trainable position and |D_B| the number of such domains. Samples
without trainable positions (fully masked, or no valid salient id anywhere) have no per-sample loss
and are left out of every count, so they cannot dilute their domain; a domain whose samples are all
like that is not "present in the batch".

The counts P, #samples, |B_d| and |D_B| are those of the WHOLE optimizer batch, over every
micro-batch and rank: `sample_scales` computes each sample's weight once per batch (the trainer
all-reduces the counts), and the loss of each micro-batch uses them (`TokenLayout.sample_scale_N`).
Summing the micro-batch losses then gives the batch objective exactly. Without them,
`position_weights` normalises within the tensors it is given (one batch in one call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from longhorizon.distill.config import Aggregation


@dataclass(frozen=True)
class PositionWeights:
    """Weights over the P trainable positions plus what the per-domain monitors need."""

    objective_P: Tensor  # aggregation weights of the objective; sum to 1 when P > 0
    domain_P: Tensor  # 1 / (|R_i| * |B_d|): per-domain mean of per-sample means
    domain_index_P: Tensor  # compact domain index of each position, into `domains`
    domains: list[int]  # original domain ids present, sorted
    samples_per_domain: list[int]
    tokens_per_domain: list[int]


Reduce = Callable[[list[float]], list[float]]  # sums a list of counts over ranks


def sample_scales(
    tokens_N: Tensor,
    domain_N: Tensor,
    num_domains: int,
    aggregation: Aggregation,
    domain_weights_D: Tensor | None = None,
    reduce: Reduce | None = None,
) -> Tensor:
    """The objective weight w_i of each trainable position of sample i, over the whole batch.

    tokens_N: trainable positions |R_i| of this rank's samples; domain_N: their domain ids in
    [0, num_domains) (the same ids on every rank); `reduce` sums counts over ranks. float64.
    """
    present_N = tokens_N > 0
    samples_D = torch.bincount(domain_N[present_N], minlength=num_domains).to(torch.float64)
    local = [float(tokens_N.sum()), float(present_N.sum()), *samples_D.tolist()]
    total_tokens, total_samples, *per_domain = reduce(local) if reduce else local
    samples_D = torch.tensor(per_domain, dtype=torch.float64)
    r_N = tokens_N.to(torch.float64).clamp_min(1.0)
    if aggregation == "token":
        scale_N = torch.full_like(r_N, 1.0 / max(total_tokens, 1.0))
    elif aggregation == "sample":
        scale_N = 1.0 / (r_N * max(total_samples, 1.0))
    else:
        a_D = torch.ones(num_domains, dtype=torch.float64)
        if domain_weights_D is not None:
            a_D = domain_weights_D.to(torch.float64)[:num_domains]
        a_D = a_D * (samples_D > 0)  # only the domains present in the batch
        scale_N = a_D[domain_N] / (r_N * samples_D[domain_N].clamp_min(1.0))
        scale_N = scale_N / a_D.sum().clamp_min(1e-12)
    return scale_N * present_N


def position_weights(
    sample_P: Tensor,
    sample_domain_N: Tensor,
    aggregation: Aggregation,
    dtype: torch.dtype,
    domain_weights: Tensor | None = None,
    sample_scale_N: Tensor | None = None,
) -> PositionWeights:
    """Weights for the positions p whose sample index is sample_P[p].

    `domain_weights[j]` is the relative weight a_j of domain id j (domain aggregation only).
    `sample_scale_N` (from `sample_scales`) replaces the objective weights computed here.
    """
    n = sample_domain_N.shape[0]
    device = sample_P.device
    tokens_N = torch.bincount(sample_P, minlength=n)
    present_N = tokens_N > 0
    domains, compact_N = torch.unique(sample_domain_N.to(device), return_inverse=True)
    # Count only samples with a per-sample loss; drop domains left with none.
    samples_D = torch.zeros(domains.shape[0], dtype=torch.int64, device=device)
    samples_D.index_add_(0, compact_N, present_N.to(torch.int64))
    keep_D = samples_D > 0
    remap_D = torch.cumsum(keep_D.to(torch.int64), 0) - 1
    domain_index_P = remap_D[compact_N[sample_P]]
    samples_D = samples_D[keep_D]
    tokens_D = torch.zeros(samples_D.shape[0], dtype=torch.int64, device=device)
    tokens_D.index_add_(0, domain_index_P, torch.ones_like(sample_P))

    per_sample_P = 1.0 / tokens_N[sample_P].to(dtype)
    domain_P = per_sample_P / samples_D[domain_index_P].to(dtype)
    if sample_scale_N is not None:
        objective_P = sample_scale_N.to(device=device, dtype=dtype)[sample_P]
    elif aggregation == "token":
        objective_P = torch.full_like(per_sample_P, 1.0 / max(sample_P.shape[0], 1))
    elif aggregation == "sample":
        objective_P = per_sample_P / max(int(present_N.sum()), 1)
    elif domain_weights is None:
        objective_P = domain_P / max(samples_D.shape[0], 1)
    else:
        a_D = domain_weights.to(device=device, dtype=dtype)[domains[keep_D]]
        objective_P = domain_P * a_D[domain_index_P] / a_D.sum().clamp_min(1e-12)
    return PositionWeights(
        objective_P=objective_P,
        domain_P=domain_P,
        domain_index_P=domain_index_P,
        domains=domains[keep_D].tolist(),
        samples_per_domain=samples_D.tolist(),
        tokens_per_domain=tokens_D.tolist(),
    )


def per_domain_means(weights: PositionWeights, values_P: Tensor) -> list[float]:
    """Per-domain mean of per-sample means of a detached per-position quantity."""
    out = torch.zeros(len(weights.domains), dtype=weights.domain_P.dtype, device=values_P.device)
    out.index_add_(0, weights.domain_index_P, weights.domain_P * values_P.detach().to(out.dtype))
    return out.tolist()
