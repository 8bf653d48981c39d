"""Stage-1 SFT: loss on the model's own tokens of stored trajectories, packed, resumable.

    python -m longhorizon.training.sft --config recipes/sft-tiny.yaml [--set lr=2e-5 ...]
    torchrun --nproc_per_node=2 -m longhorizon.training.sft --config ... --set parallel=ddp

The run has three phases: setup (process group, data, model, optimizer, resume), train (one
optimizer step per batch of packed rows, checkpoints every `save_every` steps), cleanup.
Outputs in `output_dir`: config.yaml, metrics.jsonl, tensorboard/, checkpoints/step-N/, and
final/ (save_pretrained model + tokenizer + longhorizon_sft.json).

Test hook: LONGHORIZON_SFT_KILL_AT_STEP=N makes the process SIGKILL itself right after step N
(after its log line and checkpoint), to test exact resume after a crash.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from longhorizon.training.checkpoint import (
    TrainerState,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_final_model,
)
from longhorizon.training.config import SFTConfig, load_config
from longhorizon.training.data import Sample, domain_counts, load_samples
from longhorizon.training.distributed import (
    DistEnv,
    all_reduce_sum,
    clip_gradients,
    gradient_sync,
    init_distributed,
    shutdown,
    wrap_model,
)
from longhorizon.training.loader import StepPlan, build_micro_batches, data_fingerprint
from longhorizon.training.loss import domain_loss_sums, micro_batch_loss, step_denominator
from longhorizon.training.metrics import MetricsLogger
from longhorizon.training.modeling import (
    check_packing,
    load_model,
    load_tokenizer,
    pad_token_id,
    precision,
    resolve_isolation,
)
from longhorizon.training.optim import build_optimizer, build_scheduler
from longhorizon.training.packing import MicroBatch, pack_samples

KILL_ENV = "LONGHORIZON_SFT_KILL_AT_STEP"
SFT_METADATA = "longhorizon_sft.json"


@dataclass(frozen=True)
class SFTResult:
    output_dir: Path
    final_dir: Path
    steps: int
    last_loss: float | None
    tokens_per_s: float  # mean over the steps this process ran (0 when nothing ran)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class SFTTrainer:
    """setup() -> train() -> cleanup(); `run_sft` calls the three in order."""

    def __init__(
        self,
        cfg: SFTConfig,
        console: Console | None = None,
        final_metadata: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.console = console or Console()
        self.final_metadata = final_metadata or {}
        self.state = TrainerState()
        self.logger: MetricsLogger | None = None
        self.env: DistEnv | None = None

    # ---- setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        self.env = env = init_distributed(cfg.parallel)
        seed_everything(cfg.seed)
        # Before anything is written or any weights load: data the filters leave empty, then
        # packing a model whose layers carry state across samples.
        self._setup_data()
        check_packing(cfg)
        if env.is_main:
            cfg.output_dir.mkdir(parents=True, exist_ok=True)
            (cfg.output_dir / "config.yaml").write_text(cfg.to_yaml())
            self.console.rule(f"SFT run {cfg.output_dir}")
            self.console.print(Syntax(cfg.to_yaml(), "yaml"))
            self._print_data_summary()
        self._setup_model()
        self._resume()
        self.logger = MetricsLogger(
            cfg.output_dir,
            enabled=env.is_main,
            total_steps=self.total_steps,
            start_step=self.state.step,
            tensorboard=cfg.tensorboard,
            console=self.console,
        )

    def _setup_data(self) -> None:
        cfg, env = self.cfg, self._env
        self.samples: list[Sample] = load_samples(cfg.data, cfg.max_len)
        self.rows = pack_samples(self.samples, cfg.max_len, cfg.packing)
        cfg.accumulation(env.world_size)  # validates batch / micro / world
        self.plan = StepPlan(
            self.rows,
            batch_size=cfg.batch_size,
            micro_batch_size=cfg.micro_batch_size,
            world_size=env.world_size,
            rank=env.rank,
            seed=cfg.seed,
        )
        self.total_steps = self.plan.total_steps(cfg.epochs, cfg.max_steps)
        self.fingerprint = data_fingerprint(self.samples, self.rows)
        self.domains = sorted({s.domain for s in self.samples})

    def _print_data_summary(self) -> None:
        table = Table(title="training data")
        for column in ("domain", "samples", "tokens", "trained tokens"):
            table.add_column(column, justify="right" if column != "domain" else "left")
        for domain, c in domain_counts(self.samples).items():
            table.add_row(domain, f"{c['samples']:,}", f"{c['tokens']:,}", f"{c['trained']:,}")
        self.console.print(table)
        fill = sum(len(s) for s in self.samples) / max(len(self.rows) * self.cfg.max_len, 1)
        self.console.print(
            f"{len(self.rows):,} packed rows of <= {self.cfg.max_len:,} tokens "
            f"(fill {fill:.1%}); {self.plan.steps_per_epoch} steps per epoch, "
            f"{self.total_steps} in total"
        )

    def _setup_model(self) -> None:
        cfg, env = self.cfg, self._env
        dtype, self.autocast = precision(cfg.dtype, env.device)
        model = load_model(cfg, dtype, env.device)
        attn = model.config._attn_implementation
        self.isolation = resolve_isolation(cfg.isolation, attn, env.device)
        self.mask_dtype = self.autocast or dtype  # sdpa wants the mask in the query's dtype
        self.pad_id = pad_token_id(model.config)
        self.tokenizer = load_tokenizer(cfg)
        self.model = wrap_model(model, env)
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.total_steps)

    def _resume(self) -> None:
        cfg = self.cfg
        found = latest_checkpoint(cfg.output_dir) if cfg.resume else None
        if found is None:
            self.state = self._fresh_state()
            return
        env = self._env
        state = load_checkpoint(found, self.model, self.optimizer, self.scheduler, env)
        if state.data_fingerprint != self.fingerprint:
            raise RuntimeError(f"{found}: the training data changed since this checkpoint")
        if state.config_fingerprint != cfg.fingerprint():
            raise RuntimeError(f"{found}: the config changed since this checkpoint")
        self.state = state.model_copy(update={"world_size": env.world_size})
        if env.is_main:
            self.console.print(f"resumed from {found} at step {state.step}")

    def _fresh_state(self) -> TrainerState:
        return TrainerState(
            total_steps=self.total_steps,
            world_size=self._env.world_size,
            parallel=self.cfg.parallel,
            data_fingerprint=self.fingerprint,
            config_fingerprint=self.cfg.fingerprint(),
        )

    @property
    def _env(self) -> DistEnv:
        assert self.env is not None, "call setup() first"
        return self.env

    # ---- train -----------------------------------------------------------------------------
    def train(self) -> SFTResult:
        cfg = self.cfg
        last_loss, rates = None, []
        for step in range(self.state.step, self.total_steps):
            record = self.train_step(step)
            last_loss = record["loss"]
            rates.append(record["tokens_per_s"])
            self._advance(step + 1, int(record["tokens"]))
            assert self.logger is not None
            done = step + 1
            self.logger.log(record, echo=done % cfg.log_every == 0 or done == self.total_steps)
            if done % cfg.save_every == 0 and done < self.total_steps:
                self._save_checkpoint()
            if os.environ.get(KILL_ENV) == str(done):
                os.kill(os.getpid(), signal.SIGKILL)
        self._save_final()
        mean_rate = float(np.mean(rates)) if rates else 0.0
        return SFTResult(cfg.output_dir, cfg.final_path, self.state.step, last_loss, mean_rate)

    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step over this rank's micro-batches; returns the step's log record."""
        start = time.perf_counter()
        batches = build_micro_batches(
            self.plan, step, self.samples, self.isolation, self.pad_id, self.mask_dtype
        )
        counts = self._step_counts(batches)
        lr = self.scheduler.get_last_lr()[0]
        loss_sum, domain_sums = self._accumulate_gradients(batches, counts["denominator"])
        grad_norm = self._clip_and_step()
        loss, *domain_sums = all_reduce_sum([loss_sum, *domain_sums], self._env)
        elapsed = time.perf_counter() - start
        record = {
            "step": step + 1,
            "epoch": self.plan.position(step)[0],
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": int(counts["tokens"]),
            "trained_tokens": int(counts["trained"]),
            "samples": int(counts["samples"]),
            "tokens_per_s": counts["tokens"] / elapsed,
            "step_s": elapsed,
        }
        for d, domain in enumerate(self.domains):  # mean token loss per domain in this step
            if domain_sums[2 * d + 1]:
                record[f"loss/{domain}"] = domain_sums[2 * d] / domain_sums[2 * d + 1]
        return record

    def _step_counts(self, batches: list[MicroBatch]) -> dict[str, float]:
        """The step's loss normaliser and sizes, summed over all ranks."""
        local = [
            step_denominator(batches, self.cfg.loss_normalisation),
            float(sum(b.num_tokens for b in batches)),
            float(sum(b.num_trainable for b in batches)),
            float(sum(b.num_samples for b in batches)),
        ]
        keys = ("denominator", "tokens", "trained", "samples")
        return dict(zip(keys, all_reduce_sum(local, self._env), strict=True))

    def _accumulate_gradients(
        self, batches: list[MicroBatch], denominator: float
    ) -> tuple[float, list[float]]:
        """Backward over every micro-batch (gradients synced on the last one only)."""
        cfg, env, amp = self.cfg, self._env, self.autocast
        loss_sum, domain_sums = 0.0, [0.0] * (2 * len(self.domains))
        normalisation, chunk = cfg.loss_normalisation, cfg.loss.chunk_size
        for i, batch in enumerate(batches):
            with gradient_sync(self.model, env, sync=i == len(batches) - 1):
                part = micro_batch_loss(
                    self.model, batch, denominator, normalisation, env.device, amp, chunk
                )
                # DDP and FSDP2 average gradients over ranks: scale up to keep the global sum.
                (part.loss * env.world_size).backward()
            loss_sum += part.loss.item()
            batch_sums = domain_loss_sums(batch, part, self.domains)
            domain_sums = [a + b for a, b in zip(domain_sums, batch_sums, strict=True)]
        return loss_sum, domain_sums

    def _clip_and_step(self) -> float:
        norm = clip_gradients(self.model, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def _advance(self, done: int, tokens: int) -> None:
        epoch, in_epoch = self.plan.position(done)
        self.state = self.state.model_copy(
            update={
                "step": done,
                "epoch": epoch,
                "step_in_epoch": in_epoch,
                "tokens_seen": self.state.tokens_seen + tokens,
            }
        )

    def _save_checkpoint(self) -> None:
        env, cfg = self._env, self.cfg
        path = save_checkpoint(
            self.model,
            self.optimizer,
            self.scheduler,
            self.state,
            cfg.output_dir,
            env,
            cfg.keep_checkpoints,
        )
        if env.is_main:
            self.console.print(f"checkpoint {path}")

    def _save_final(self) -> None:
        env, cfg = self._env, self.cfg
        metadata = {
            SFT_METADATA: {
                "base_model": cfg.model,
                "steps": self.state.step,
                "tokens_seen": self.state.tokens_seen,
                "data_fingerprint": self.fingerprint,
                "domains": domain_counts(self.samples),
                "config": cfg.model_dump(mode="json"),
            },
            **self.final_metadata,
        }
        out = save_final_model(self.model, self.tokenizer, cfg.final_path, env, metadata)
        if env.is_main:
            self.console.print(f"final model: {out}")

    # ---- cleanup ---------------------------------------------------------------------------
    def cleanup(self) -> None:
        # No barrier here: after an error on one rank, the others would wait for it forever.
        if self.logger is not None:
            self.logger.close()
        if self.env is not None:
            shutdown(self.env)


def run_sft(
    cfg: SFTConfig,
    console: Console | None = None,
    final_metadata: dict[str, dict[str, Any]] | None = None,
) -> SFTResult:
    """Train (or resume) one SFT run; a run whose final model exists is not trained again."""
    if cfg.resume and (cfg.final_path / SFT_METADATA).exists():
        meta = json.loads((cfg.final_path / SFT_METADATA).read_text())
        (console or Console()).print(f"{cfg.final_path} exists: nothing to train")
        return SFTResult(cfg.output_dir, cfg.final_path, meta["steps"], None, 0.0)
    trainer = SFTTrainer(cfg, console, final_metadata)
    try:
        trainer.setup()
        return trainer.train()
    finally:
        trainer.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Stage-1 SFT on stored trajectories.")
    parser.add_argument("--config", type=Path, help="YAML file of SFTConfig fields")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config")
    args = parser.parse_args(argv)
    cfg = load_config(SFTConfig, args.config, args.overrides)
    if args.dry_run:
        print(cfg.to_yaml())
        return
    run_sft(cfg)


if __name__ == "__main__":
    main()
