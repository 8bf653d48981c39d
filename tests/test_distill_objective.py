"""The OPD objective is the spec's batch objective, whatever the micro-batch size and rank count.

L = sum over micro-batches and ranks; per-sample means of the per-token loss, averaged within each
domain over the WHOLE batch, then over the domains present (weighted by `domain_loss_weights`).
Checked in float64 on the tiny model against a plain full-logits reference computation.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import AutoModelForCausalLM

from longhorizon.distill.aggregate import sample_scales
from longhorizon.distill.batch import RolloutSample
from longhorizon.distill.config import DistillLossConfig
from longhorizon.distill.scoring import TeacherScores
from longhorizon.distill.step import StepSettings, accumulate_gradients
from longhorizon.training.distributed import DistEnv

DOMAINS = ["instruction", "search"]
K = 4
WEIGHTS = {"search": 0.25}


def make_batch(vocab: int, n: int = 10, seed: int = 0) -> tuple[list[RolloutSample], list]:  # type: ignore[type-arg]
    """9 instruction samples and 1 search sample (the issue's example), random lengths and masks;
    the teacher's top-k ids and logprobs are random, some slots invalid (-1)."""
    rng = np.random.default_rng(seed)
    samples, scores = [], []
    for i in range(n):
        length = int(rng.integers(6, 14))
        ids = rng.integers(3, vocab, size=length).tolist()
        mask = [0, 0] + [int(m) for m in rng.random(length - 2) < 0.8]
        mask[-1] = 1
        sample = RolloutSample("search" if i == 4 else "instruction", ids, mask)
        positions = np.asarray(sample.positions(), dtype=np.int64)
        top_ids = np.stack([rng.choice(vocab, size=K, replace=False) for _ in positions])
        top_ids[rng.random(top_ids.shape) < 0.15] = -1
        logits = rng.normal(size=(len(positions), K))
        top_lp = logits - np.log(np.exp(logits).sum(-1, keepdims=True) + 3.0)  # mass elsewhere
        scores.append(
            TeacherScores(
                positions=positions,
                target_logprobs=np.full(len(positions), -1.0, dtype=np.float32),
                top_ids=top_ids.astype(np.int64),
                top_logprobs=top_lp.astype(np.float32),
            )
        )
        samples.append(sample)
    return samples, scores


def reference_loss(model, samples, scores, aggregation: str, weights: dict[str, float]):  # type: ignore[no-untyped-def]
    """The spec's formula, sample by sample, on full logits."""
    per_sample: list[tuple[str, torch.Tensor, int]] = []
    for sample, score in zip(samples, scores, strict=True):
        logits = model(input_ids=torch.tensor([sample.input_ids])).logits[0]
        terms = []
        for p, ids, lp in zip(score.positions, score.top_ids, score.top_logprobs, strict=True):
            keep = ids >= 0
            if not keep.any():
                continue
            s_ids = torch.tensor(ids[keep])
            log_ps = torch.log_softmax(logits[p - 1, s_ids], -1)
            log_pt = torch.log_softmax(torch.tensor(lp[keep], dtype=torch.float64), -1)
            terms.append((log_ps.exp() * (log_ps - log_pt)).sum())
        if terms:
            per_sample.append((sample.domain, torch.stack(terms).mean(), len(terms)))
    if aggregation == "token":
        return sum(m * n for _, m, n in per_sample) / sum(n for _, _, n in per_sample)
    if aggregation == "sample":
        return sum(m for _, m, _ in per_sample) / len(per_sample)
    present = sorted({d for d, _, _ in per_sample})
    a = {d: weights.get(d, 1.0) for d in present}
    means = {d: torch.stack([m for dd, m, _ in per_sample if dd == d]).mean() for d in present}
    return sum(a[d] * means[d] for d in present) / sum(a.values())


def load_float64(path: str):  # type: ignore[no-untyped-def]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64)
    return model.train()


def grads(model) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    out = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=False)
    return out


def settings(aggregation: str, micro: int, weights: dict[str, float] | None) -> StepSettings:
    loss = DistillLossConfig(kind="sva", k=K, aggregation=aggregation, monitor_coverage=False)
    return StepSettings(loss, DOMAINS, pad_id=0, micro_batch_size=micro, domain_weights=weights)


CASES = [("domain", None), ("domain", WEIGHTS), ("sample", None), ("token", None)]


@pytest.mark.parametrize(("aggregation", "weights"), CASES)
def test_gradients_equal_the_reference_for_every_micro_batch_size(
    tiny_llama_path: str, aggregation: str, weights: dict[str, float] | None
) -> None:
    model = load_float64(tiny_llama_path)
    samples, scores = make_batch(model.config.vocab_size)
    model.zero_grad(set_to_none=True)
    ref = reference_loss(model, samples, scores, aggregation, weights or {})
    ref.backward()
    want = grads(model)
    for micro in (1, 3, len(samples)):
        got = accumulate_gradients(model, samples, scores, settings(aggregation, micro, weights))
        assert got["loss"] == pytest.approx(float(ref.detach()), abs=1e-9)
        for g, w in zip(grads(model), want, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-9)


def test_the_one_search_sample_gets_half_of_the_objective() -> None:
    """The issue's example: 9 instruction + 1 search sample; search's share is 0.50, not 0.10."""
    tokens_N = torch.tensor([3, 5, 2, 7, 4, 1, 6, 2, 3, 5])
    domain_N = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    scale_N = sample_scales(tokens_N, domain_N, 2, "domain")
    share = (scale_N * tokens_N).tolist()  # each sample's total weight
    assert share[4] == pytest.approx(0.5) and sum(share) == pytest.approx(1.0)
    assert all(s == pytest.approx(0.5 / 9) for i, s in enumerate(share) if i != 4)
    weighted = sample_scales(tokens_N, domain_N, 2, "domain", torch.tensor([1.0, 0.25]))
    assert float(weighted[4] * 4) == pytest.approx(0.25 / 1.25)
    halves = [sample_scales(tokens_N[s], domain_N[s], 2, "domain") for s in (slice(0, 5),)]
    assert float(halves[0][4] * 4) == pytest.approx(0.5)  # a rank's own counts, unreduced
    empty = sample_scales(torch.tensor([0, 4]), torch.tensor([1, 0]), 2, "domain")
    assert empty.tolist() == [0.0, 0.25]  # a sample with no trained token has no weight


# ---- two ranks (gloo on CPU) ---------------------------------------------------------------
def _rank_worker(rank: int, init_file: str, path: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        model = load_float64(path)
        samples, scores = make_batch(model.config.vocab_size)
        mine = slice(0, 5) if rank == 0 else slice(5, 10)  # the search sample is on rank 0
        env = DistEnv("ddp", rank=rank, world_size=2)
        record = accumulate_gradients(
            model, samples[mine], scores[mine], settings("domain", 2, WEIGHTS), env
        )
        if rank == 0:
            torch.save({"loss": record["loss"], "grads": grads(model)}, out)
    finally:
        dist.destroy_process_group()


def test_two_ranks_give_the_single_process_gradients(tiny_llama_path: str) -> None:
    model = load_float64(tiny_llama_path)
    samples, scores = make_batch(model.config.vocab_size)
    single = accumulate_gradients(model, samples, scores, settings("domain", 10, WEIGHTS))
    want = grads(model)
    with tempfile.TemporaryDirectory() as tmp:
        init, out = os.path.join(tmp, "init"), os.path.join(tmp, "grads.pt")
        mp.spawn(_rank_worker, args=(init, tiny_llama_path, out), nprocs=2, join=True)
        got = torch.load(Path(out), weights_only=False)
    assert got["loss"] == pytest.approx(single["loss"], abs=1e-12)
    for g, w in zip(got["grads"], want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-6, atol=1e-9)
