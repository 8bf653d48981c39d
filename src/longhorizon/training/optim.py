"""AdamW with decoupled weight decay on matrices only, and the warmup + cosine schedule."""

from __future__ import annotations

import math
from functools import partial
from typing import Protocol

import torch
from torch import nn


class OptimSettings(Protocol):
    """The optimizer and schedule fields a trainer config carries (SFTConfig, DistillConfig)."""

    @property
    def lr(self) -> float: ...
    @property
    def weight_decay(self) -> float: ...
    @property
    def betas(self) -> tuple[float, float]: ...
    @property
    def eps(self) -> float: ...
    @property
    def schedule(self) -> str: ...
    @property
    def warmup_ratio(self) -> float: ...
    @property
    def min_lr_ratio(self) -> float: ...


def build_optimizer(model: nn.Module, cfg: OptimSettings) -> torch.optim.AdamW:
    """Weight decay on weight matrices and embeddings; none on biases and norm gains (1-D)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)


def lr_factor(
    step: int, *, warmup: int, total: int, schedule: str = "cosine", min_ratio: float = 0.0
) -> float:
    """Multiplier of the peak lr at 0-based optimizer step `step`.

    Linear warmup reaches the peak at step `warmup - 1` (the first step already trains, at
    peak / warmup); then cosine decay towards `min_ratio`, reached one step after the last (so
    the last step still learns), or constant.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_steps(cfg: OptimSettings, total: int) -> int:
    return math.ceil(cfg.warmup_ratio * total)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimSettings, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    factor = partial(
        lr_factor,
        warmup=warmup_steps(cfg, total),
        total=total,
        schedule=cfg.schedule,
        min_ratio=cfg.min_lr_ratio,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
