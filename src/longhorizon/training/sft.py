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
    gradient_sync,
    init_distributed,
    shutdown,
    wrap_model,
)
from longhorizon.training.loader import StepPlan, build_micro_batches, data_fingerprint
from longhorizon.training.loss import micro_batch_loss, step_denominator
from longhorizon.training.metrics import MetricsLogger
from longhorizon.training.optim import build_optimizer, build_scheduler
from longhorizon.training.packing import Isolation, pack_samples

KILL_ENV = "LONGHORIZON_SFT_KILL_AT_STEP"
SFT_METADATA = "longhorizon_sft.json"


@dataclass(frozen=True)
class SFTResult:
    output_dir: Path
    final_dir: Path
    steps: int
    last_loss: float | None
    tokens_per_s: float  # mean over the steps this process ran (0 when nothing ran)


def precision(choice: str, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(parameter dtype, autocast dtype): bf16 autocast keeps float32 master weights."""
    if choice == "float64":
        return torch.float64, None
    if choice == "bfloat16" or (
        choice == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    ):
        return torch.float32, torch.bfloat16
    return torch.float32, None


def resolve_isolation(choice: str, attn_implementation: str, device: torch.device) -> Isolation:
    """How packed samples are kept apart; `auto` picks the fastest that is exact.

    flash/varlen kernels read sequence boundaries from restarting positions. On CPU, sdpa's
    backward is ~4x faster with our float additive mask than with the boolean mask that
    transformers builds from the positions (measured on the tiny model, 2K-token rows); on
    GPU the boolean mask takes a quarter of the memory of a float one.
    """
    flash = attn_implementation.startswith("flash")
    if choice == "mask" and flash:
        raise ValueError("flash attention takes no 4D mask: use isolation position_ids or auto")
    if choice != "auto":
        return choice  # type: ignore[return-value]
    if flash:
        return "position_ids"
    from transformers import masking_utils

    # transformers turns restarting positions into a block-diagonal mask when it has this.
    reads_positions = hasattr(masking_utils, "find_packed_sequence_indices")
    return "position_ids" if reads_positions and device.type != "cpu" else "mask"


def load_model(cfg: SFTConfig, dtype: torch.dtype, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    from longhorizon.models.registry import resolve_model

    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model), **kwargs).to(device)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def load_tokenizer(cfg: SFTConfig) -> Any:
    from transformers import AutoTokenizer

    from longhorizon.models.registry import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(cfg.tokenizer or cfg.model))


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
        if env.is_main:
            cfg.output_dir.mkdir(parents=True, exist_ok=True)
            (cfg.output_dir / "config.yaml").write_text(cfg.to_yaml())
            self.console.rule(f"SFT run {cfg.output_dir}")
            self.console.print(Syntax(cfg.to_yaml(), "yaml"))
        self._setup_data()
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
        if env.is_main:
            self._print_data_summary()

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
        self.pad_id = model.config.pad_token_id or model.config.eos_token_id or 0
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
        cfg, env = self.cfg, self._env
        start = time.perf_counter()
        batches = build_micro_batches(
            self.plan, step, self.samples, self.isolation, self.pad_id, self.mask_dtype
        )
        local = [
            step_denominator(batches, cfg.loss_normalisation),
            float(sum(b.num_tokens for b in batches)),
            float(sum(b.num_trainable for b in batches)),
            float(sum(b.num_samples for b in batches)),
        ]
        denominator, tokens, trained, samples = all_reduce_sum(local, env)
        lr = self.scheduler.get_last_lr()[0]
        loss_sum = 0.0
        for i, batch in enumerate(batches):
            with gradient_sync(self.model, env, sync=i == len(batches) - 1):
                loss = micro_batch_loss(
                    self.model,
                    batch,
                    denominator,
                    cfg.loss_normalisation,
                    env.device,
                    self.autocast,
                )
                # DDP and FSDP2 average gradients over ranks: scale up to keep the global sum.
                (loss * env.world_size).backward()
            loss_sum += loss.item()
        grad_norm = self._clip_and_step()
        (loss_value,) = all_reduce_sum([loss_sum], env)
        elapsed = time.perf_counter() - start
        epoch, _ = self.plan.position(step)
        return {
            "step": step + 1,
            "epoch": epoch,
            "loss": loss_value,
            "lr": lr,
            "grad_norm": grad_norm,
            "tokens": int(tokens),
            "trained_tokens": int(trained),
            "samples": int(samples),
            "tokens_per_s": tokens / elapsed,
            "step_s": elapsed,
        }

    def _clip_and_step(self) -> float:
        limit = self.cfg.max_grad_norm if self.cfg.max_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), limit)
        if hasattr(norm, "full_tensor"):  # a DTensor under FSDP2
            norm = norm.full_tensor()
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

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
