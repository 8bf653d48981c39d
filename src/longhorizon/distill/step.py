"""One OPD optimizer update: the batch objective over micro-batches and ranks, clip, step.

The objective's normalisers (trainable tokens, samples, samples per domain, domains present) are
those of the whole batch: every rank counts its samples' trainable positions first, the counts
are summed over ranks, and each micro-batch's loss carries the resulting per-sample weights
(`aggregate.sample_scales`). The micro-batch losses then add up, over micro-batches and ranks,
to exactly the batch objective, and so do their gradients (summed over ranks).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from longhorizon.distill.aggregate import Reduce, sample_scales
from longhorizon.distill.batch import DistillBatch, RolloutSample, build_batch
from longhorizon.distill.config import DistillLossConfig
from longhorizon.distill.losses import distill_loss, trainable_positions
from longhorizon.distill.scoring import TeacherScores
from longhorizon.distill.types import DistillOutput, PositionMonitors, StudentHead
from longhorizon.training.distributed import (
    DistEnv,
    all_reduce_sum,
    clip_gradients,
    idle_passes,
    sum_gradients,
    sum_scale,
    unwrap,
)
from longhorizon.training.modeling import at_output_layer, autocast_context

__all__ = ["StepSettings", "accumulate_gradients", "micro_batches", "optimizer_update"]

MONITORS = ("loss", "kl", "coverage")


@dataclass(frozen=True)
class StepSettings:
    """What an update needs besides the model: the loss, the domain ids, the batch split."""

    loss: DistillLossConfig
    domains: list[str]  # every domain of the run, in id order (the same on every rank)
    pad_id: int
    micro_batch_size: int
    domain_weights: dict[str, float] | None = None
    max_grad_norm: float | None = None
    token_monitors: bool = False  # return the per-position monitors of every sample
    autocast: torch.dtype | None = None  # the student's forward under autocast (config `dtype`)


def _spans(n: int, size: int) -> Iterator[tuple[int, int]]:
    for lo in range(0, n, size):
        yield lo, min(lo + size, n)


def micro_batches(
    samples: list[RolloutSample],
    scores: list[TeacherScores],
    settings: StepSettings,
    vocab_size: int,
    env: DistEnv | None = None,
) -> list[DistillBatch]:
    """This rank's micro-batches, each carrying the batch-level objective weights."""
    parts = [
        build_batch(
            samples[lo:hi],
            scores[lo:hi],
            settings.domains,
            settings.pad_id,
            settings.loss.k,
            settings.domain_weights,
        )
        for lo, hi in _spans(len(samples), settings.micro_batch_size)
    ]
    if not parts:
        if env is not None:  # a rank with no sample still takes part in the counts' sum
            none = torch.zeros(0, dtype=torch.long)
            aggregation = settings.loss.aggregation
            sample_scales(none, none, len(settings.domains), aggregation, None, _reduce(env))
        return []
    tokens_N = torch.cat(
        [trainable_positions(b.teacher, b.layout, vocab_size, settings.loss).sum(1) for b in parts]
    )
    domain_N = torch.cat([b.layout.sample_domain_N for b in parts])
    weights = parts[0].layout.domain_weights_D
    scale_N = sample_scales(
        tokens_N,
        domain_N,
        len(settings.domains),
        settings.loss.aggregation,
        weights,
        None if env is None else _reduce(env),
    )
    scaled, start = [], 0
    for b in parts:
        n = b.layout.sample_domain_N.shape[0]
        layout = dataclasses.replace(b.layout, sample_scale_N=scale_N[start : start + n])
        scaled.append(dataclasses.replace(b, layout=layout))
        start += n
    return scaled


def _reduce(env: DistEnv) -> Reduce:
    return lambda counts: all_reduce_sum(counts, env)


def _to_device(obj: Any, device: torch.device) -> Any:
    """A frozen dataclass of tensors with every tensor moved (nested dataclasses too)."""
    moved = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, Tensor):
            value = value.to(device)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = _to_device(value, device)
        moved[f.name] = value
    return dataclasses.replace(obj, **moved)


def micro_batch_loss(
    model: nn.Module,
    batch: DistillBatch,
    loss: DistillLossConfig,
    autocast: torch.dtype | None = None,
) -> DistillOutput:
    """The micro-batch's share of the batch objective (and its monitors); the model's body
    runs under `autocast`, the loss outside it, at the output layer's input (where FSDP2
    holds the head's whole weight)."""
    device = next(model.parameters()).device
    batch = _to_device(batch, device)

    def objective(hidden: Tensor, w_VH: Tensor) -> DistillOutput:
        with torch.autocast(device.type, enabled=False):
            # In the weights' dtype: the k-row gathers and log-softmaxes stay float32.
            head = StudentHead(hidden[:, :-1].to(w_VH.dtype), w_VH)
            return distill_loss(head, batch.teacher, batch.layout, loss)

    with autocast_context(device, autocast):
        return at_output_layer(
            model, objective, input_ids=batch.input_ids_NT, attention_mask=batch.attention_NT
        )


def accumulate_gradients(
    model: nn.Module,
    samples: list[RolloutSample],
    scores: list[TeacherScores],
    settings: StepSettings,
    env: DistEnv | None = None,
) -> dict[str, Any]:
    """Backward of the batch objective into `.grad` (summed over ranks); returns its value and
    the per-domain monitors (means of per-sample means over the whole batch)."""
    module = unwrap(model)
    vocab = module.get_output_embeddings().weight.shape[0]  # type: ignore[operator]
    total, sums = 0.0, {d: [0.0] * 6 for d in settings.domains}
    positions: dict[int, dict[str, Any]] = {}
    start = 0
    parts = micro_batches(samples, scores, settings, vocab, env)
    idle_passes(module, len(parts), env)
    for batch in parts:
        out = micro_batch_loss(module, batch, settings.loss, settings.autocast)
        (out.loss * sum_scale(env)).backward()
        total += float(out.loss.detach())
        if settings.token_monitors and out.positions is not None:
            width = batch.layout.loss_mask_NT.shape[1]
            positions.update(per_sample_values(out.positions, width, start))
        start += batch.layout.sample_domain_N.shape[0]
        for index, m in out.metrics.per_domain.items():
            row = sums[settings.domains[index]]
            covered = 0.0 if m.coverage is None else m.coverage * m.n_samples
            has_cov = 0 if m.coverage is None else m.n_samples
            for j, value in enumerate(
                (
                    m.loss * m.n_samples,
                    m.kl * m.n_samples,
                    covered,
                    has_cov,
                    m.n_samples,
                    m.n_tokens,
                )
            ):
                row[j] += value
    if env is not None:
        sum_gradients(module, env)
        flat = all_reduce_sum([total, *(v for d in settings.domains for v in sums[d])], env)
        total = flat[0]
        sums = {d: flat[1 + 6 * i : 7 + 6 * i] for i, d in enumerate(settings.domains)}
    record: dict[str, Any] = {"loss": total, "domains": _domain_means(sums)}
    if settings.token_monitors:
        record["positions"] = positions
    return record


def per_sample_values(
    monitors: PositionMonitors, width: int, start: int
) -> dict[int, dict[str, Any]]:
    """Sample index (start + row of the micro-batch) -> its trained positions and values.

    Row t of a sample predicts token t + 1, so the position in the sequence is t + 1.
    """
    rows = monitors.rows_P.tolist()
    kl = monitors.kl_P.tolist()
    cov = None if monitors.coverage_P is None else monitors.coverage_P.tolist()
    out: dict[int, dict[str, Any]] = {}
    for j, row in enumerate(rows):
        n, t = divmod(row, width)
        entry = out.setdefault(
            start + n, {"positions": [], "kl": [], "coverage": None if cov is None else []}
        )
        entry["positions"].append(t + 1)
        entry["kl"].append(kl[j])
        if cov is not None:
            entry["coverage"].append(cov[j])
    return out


def _domain_means(sums: dict[str, list[float]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for domain, (loss, kl, cov, cov_n, n, tokens) in sums.items():
        if n:
            coverage = cov / cov_n if cov_n else None
            out[domain] = {
                "loss": loss / n,
                "kl": kl / n,
                "coverage": coverage,
                "samples": n,
                "tokens": tokens,
            }
    return out


def optimizer_update(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    samples: list[RolloutSample],
    scores: list[TeacherScores],
    settings: StepSettings,
    env: DistEnv | None = None,
) -> dict[str, Any]:
    """One optimizer step on the batch objective; returns loss, lr, grad norm and monitors."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    lr = scheduler.get_last_lr()[0]
    record = accumulate_gradients(model, samples, scores, settings, env)
    norm = clip_gradients(model, settings.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return {"loss": record["loss"], "lr": lr, "grad_norm": norm, **record}
