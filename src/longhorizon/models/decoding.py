"""Token sampling from logits: temperature, top-k, top-p, per-request seeded generators."""

from __future__ import annotations

import torch

from longhorizon.core.sampling import SamplingParams


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Logits after temperature, top-k and top-p (nucleus) filtering; filtered entries are -inf."""
    x = logits if params.temperature == 1.0 else logits / params.temperature
    if params.top_k and params.top_k < x.shape[-1]:
        kth = torch.topk(x, params.top_k, dim=-1).values[..., -1:]
        x = x.masked_fill(x < kth, float("-inf"))
    if params.top_p < 1.0:
        sorted_x, order = torch.sort(x, dim=-1, descending=True)
        cumulative = torch.softmax(sorted_x, dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative - torch.softmax(sorted_x, dim=-1) >= params.top_p  # keeps >= 1
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        x = x.masked_fill(drop, float("-inf"))
    return x


def sample_tokens(
    logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator] | None
) -> torch.Tensor:
    """One token per row of `logits` (B x V); greedy when temperature is 0.

    Sampling is an exponential race, argmax p(u) / E(u) with E(u) ~ Exp(1), which draws
    exactly from p; it is much faster on CPU than `torch.multinomial` with a generator.
    """
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits.float(), params), dim=-1)
    if generators is None:
        noise = torch.empty_like(probs).exponential_()
    else:
        rows = zip(probs, generators, strict=True)
        noise = torch.stack([torch.empty_like(p).exponential_(generator=g) for p, g in rows])
    return (probs / noise).argmax(dim=-1)


def make_generators(params: SamplingParams, batch: int) -> list[torch.Generator] | None:
    """Per-row generators so a seeded request samples the same tokens in any batch."""
    if params.seed is None or params.greedy:
        return None
    return [torch.Generator().manual_seed(params.seed) for _ in range(batch)]
