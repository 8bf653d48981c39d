"""How far the rollout engine's sampler is from the trainer on the tokens it sampled.

With a vLLM rollout engine the sampled tokens' logprobs come from vLLM's kernels, the trainer's
from transformers; after a weight sync they hold the same weights, so what remains is kernel
and precision mismatch (bf16, fused ops). Per trained token t (the engine's own sample):

    engine_kl = mean_t (log p_engine(x_t) - log p_trainer(x_t))

the k1 estimate of KL(engine || trainer), as GRPO logs it (`rl/step.py`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch
from torch import nn

from longhorizon.distill.batch import RolloutSample

__all__ = ["engine_kl"]


@torch.no_grad()
def _sampled_logprobs(model: nn.Module, samples: list[RolloutSample], pad_id: int) -> torch.Tensor:
    """log p_trainer of each sample's tokens 1..T-1, (N, T_max - 1), padded right."""
    width = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), width), pad_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for i, s in enumerate(samples):
        ids[i, : len(s.input_ids)] = torch.tensor(s.input_ids)
        attention[i, : len(s.input_ids)] = 1
    device = next(model.parameters()).device
    logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits[:, :-1]
    logp = torch.log_softmax(logits.double(), dim=-1)
    return logp.gather(-1, ids[:, 1:, None].to(device)).squeeze(-1).cpu()


def engine_kl(
    model: nn.Module, samples: list[RolloutSample], micro_batch_size: int, pad_id: int
) -> dict[str, Any] | None:
    """{"kl": mean of log p_engine - log p_trainer over every generated token, "tokens": their
    count, "domains": {domain: the mean over its tokens}}; None when no sample carries the
    engine's logprobs."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    scored = [s for s in samples if s.engine_logprobs is not None]
    was_training = model.training
    model.eval()
    for lo in range(0, len(scored), micro_batch_size):
        part = scored[lo : lo + micro_batch_size]
        trainer = _sampled_logprobs(model, part, pad_id)
        for i, s in enumerate(part):
            assert s.engine_logprobs is not None
            for t in range(1, len(s.input_ids)):
                if s.loss_mask[t]:
                    gap = s.engine_logprobs[t] - float(trainer[i, t - 1])
                    sums[s.domain] += gap
                    counts[s.domain] += 1
    model.train(was_training)
    if not counts:
        return None
    tokens = sum(counts.values())
    domains = {d: sums[d] / counts[d] for d in sorted(counts)}
    return {"kl": sum(sums.values()) / tokens, "tokens": tokens, "domains": domains}
