"""Stage 3: multi-teacher, domain-routed on-policy distillation, resumable like SFT.

    longhorizon distill --config distill.yaml [--set lr=1e-6 ...] [--dry-run]
    torchrun --nproc_per_node=2 -m longhorizon.cli.main distill --config X --set parallel=ddp

Each step: the rollout engine (`serving/engine.py`: a frozen in-process snapshot of the
student, or with `rollout.backend: vllm` a vLLM server) rolls out a balanced set of prompts
under each domain's protocol (through the harness, within budgets; TRUNCATED kept, ABORTED
retried), the routed teacher (with `routing: soft`, the mixture of teachers of the sample's
domain) scores the student's own tokens (cached), and the student takes `minibatches x epochs`
optimizer updates on the configured loss (SVA by default). The engine is synced to the
student's weights every `rollout.refresh_every` steps; with vLLM, the engine-vs-trainer KL on
the sampled tokens (`distill/mismatch.py`) is logged every step.

Streaming (`rollout.max_staleness: 1`): the engine is synced after a step's scoring, and the
next step's rollouts run on it while the step's update runs in a worker thread, one policy
version behind; each step logs that version, its staleness and the engine-vs-trainer KL.

The run has three phases, as SFT: setup (config printed and saved, models, optimizer, resume),
train (checkpoints every `save_every` steps through training/checkpoint), cleanup. Outputs in
`output_dir`: config.yaml, metrics.jsonl, token_monitors.jsonl (`distill/monitors.py`),
tensorboard/, rollouts/, teacher_cache/, checkpoints/step-N/ and final/ (model + tokenizer +
longhorizon_distill.json).

Exact resume: a step's prompts, minibatch order and sampling seeds are functions of (seed,
step), its episodes have per-step ids (reused from the store when a killed run finished them),
and the checkpoint holds student, optimizer, scheduler and RNG states. Test hook:
LONGHORIZON_DISTILL_KILL_AT_STEP=N SIGKILLs the process right after step N is logged.

Under `parallel: ddp` (torchrun) every rank holds the student, its own frozen teachers and its
own snapshot. The step's prompts are drawn as in one process and split over the ranks (prompt
i on rank i mod W, same seeds); each rank rolls out, scores and trains on its share. The
minibatches are drawn over the whole step's samples in their one-process order (each rank
trains its members of each), the objective's normalisers are counted over every rank
(`distill/step.py`) and the gradients summed, so an update equals the one-process update.
Rank 0 alone writes metrics (aggregated over ranks), token monitors (gathered), checkpoints and
the final model; rollouts and teacher scores go to the shared store and cache.
Under `parallel: fsdp2` the student is sharded (`fully_shard` per decoder layer, checkpoints
through DCP) and the rest is as under ddp: the update's forward passes run in lockstep (a rank
with fewer micro-batches makes idle one-token passes), FSDP2 reduces the gradients (scaled to a
sum), and the rollout engine, the engine-vs-trainer KL and the student's top-k read a whole
replica gathered after each update (`training/replica.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.syntax import Syntax
from transformers import AutoModelForCausalLM, AutoTokenizer

from longhorizon.core import SamplingParams, Trajectory, TrajectoryStore
from longhorizon.core.store import read_task_pool
from longhorizon.distill.batch import RolloutSample
from longhorizon.distill.config import STUDENT_TOPK_KINDS, DistillConfig
from longhorizon.distill.mismatch import engine_kl
from longhorizon.distill.monitors import SampleMonitors, TokenMonitorLog, sample_monitors
from longhorizon.distill.rollouts import (
    StepRollouts,
    balanced_prompts,
    episode_metrics,
    episode_rows,
    minibatch_indices,
    open_rollout_engine,
    pick_prompts,
    rollout_rates,
    rollout_samples,
    sample_order,
    sample_staleness,
    step_rng,
    step_tasks,
)
from longhorizon.distill.scoring import (
    ScoreCache,
    ScoreRequest,
    TeacherScores,
    policy_topk,
    score_sequences,
)
from longhorizon.distill.step import StepSettings, optimizer_update
from longhorizon.distill.teachers import TeacherRegistry
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig
from longhorizon.harness.episode import Verify
from longhorizon.models.registry import resolve_model
from longhorizon.serving.engine import RolloutEngine
from longhorizon.serving.summariser import summariser_resources
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusIndex
from longhorizon.training.checkpoint import (
    TrainerState,
    end_of_step,
    resume_latest,
    save_final_model,
)
from longhorizon.training.distributed import (
    DistEnv,
    all_gather_objects,
    all_reduce_sum,
    init_distributed,
    rank_share,
    shutdown,
    wrap_model,
)
from longhorizon.training.loop import StepLoop, no_update, run_steps, update_overlapping
from longhorizon.training.metrics import MetricsLogger
from longhorizon.training.modeling import precision
from longhorizon.training.optim import build_optimizer, build_scheduler
from longhorizon.training.replica import PolicyReplica
from longhorizon.training.sft import seed_everything

__all__ = ["DISTILL_METADATA", "KILL_ENV", "Distiller", "run_distill"]

KILL_ENV = "LONGHORIZON_DISTILL_KILL_AT_STEP"
DISTILL_METADATA = "longhorizon_distill.json"
PHASES = ("rollout", "score", "train")


@dataclass(frozen=True)
class _Scored:
    samples: list[RolloutSample]
    scores: list[TeacherScores]


class Distiller:
    """setup() -> train() -> cleanup(); `run_distill` calls the three in order.

    `verify` scores finished rollouts (success monitor); it is injected so that distillation
    does not depend on the domains.
    """

    def __init__(self, config: DistillConfig, verify: Verify, console: Console | None = None):
        self.config = config
        self.verify = verify
        self.env: DistEnv = init_distributed(config.parallel)
        # Every rank runs the same loop; only rank 0 speaks.
        self.console = (console or Console()) if self.env.is_main else Console(quiet=True)
        self.state = TrainerState()
        self.logger: MetricsLogger | None = None
        self.teachers: TeacherRegistry | None = None
        self.rollouts: StepRollouts | None = None
        self.monitors: TokenMonitorLog | None = None
        self.engine: RolloutEngine | None = None
        self.autocast: torch.dtype | None = None  # the student's loss forward (`dtype`)
        # max_staleness 1: the next step's episodes, rolled out during this step's update
        self._prefetched: dict[int, list[Trajectory]] = {}

    # ---- setup -------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        seed_everything(cfg.seed)
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        if self.env.is_main:
            (cfg.output_dir / "config.yaml").write_text(cfg.to_yaml())
        self.console.rule(f"OPD run {cfg.output_dir} ({self.env.world_size} rank(s))")
        self.console.print(Syntax(cfg.to_yaml(), "yaml"))
        self.tasks = read_task_pool(cfg.tasks)  # before the models: a bad path fails fast
        self._setup_models()
        self._setup_data()
        self.total_updates = cfg.steps * cfg.updates_per_step
        self.optimizer = build_optimizer(self.student, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.total_updates)
        self._resume()
        self.engine = open_rollout_engine(
            cfg.model,
            cfg.rollout,
            cfg.output_dir,
            self.policy(),
            self.tokenizer,
            self.state.step,
            self.env,
        )
        store = TrajectoryStore(cfg.output_dir / "rollouts")
        self.rollouts = StepRollouts(store, cfg.rollout.concurrency, cfg.rollout.samples_per_prompt)
        self.rollouts.load_from(self.state.step)
        self.cache = ScoreCache(cfg.output_dir / "teacher_cache")
        if cfg.token_monitors and self.env.is_main:
            self.monitors = TokenMonitorLog(cfg.output_dir, self.state.step)
        self.logger = MetricsLogger(
            cfg.output_dir,
            enabled=self.env.is_main,
            total_steps=cfg.steps,
            start_step=self.state.step,
            tensorboard=cfg.tensorboard,
            console=self.console,
            name="opd",
        )

    def _setup_models(self) -> None:
        cfg = self.config
        path = resolve_model(cfg.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # float32 weights, autocast to bfloat16 where `dtype` says so (as SFT)
        dtype, self.autocast = precision(cfg.dtype, self.env.device)
        student = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        student = student.to(self.env.device)  # type: ignore[arg-type]
        self.replica = PolicyReplica(student, self.env)
        # ddp: not wrapped, the ranks' gradients are summed in `distill/step.py`
        self.student = wrap_model(student, self.env) if self.env.parallel == "fsdp2" else student
        special = tuple(self.tokenizer.all_special_ids) if cfg.loss.exclude_special else ()
        excluded = tuple(sorted({*cfg.loss.excluded_ids, *special}))
        self.loss = cfg.loss.model_copy(update={"excluded_ids": excluded})

    def _setup_data(self) -> None:
        cfg = self.config
        self.prompts = balanced_prompts(self.tasks)
        self.domains = sorted(self.prompts)
        mixtures = None  # hard routing
        if cfg.routing == "soft":
            mixtures = {d: cfg.teacher_mixture(d) or {} for d in self.domains}
        self.teachers = TeacherRegistry.open(cfg.teachers, mixtures)
        self.teachers.check(set(self.domains), self.tokenizer, cfg.loss.kind)
        paths = [p for files in cfg.corpus.values() for p in files]
        self.resources: dict[str, Any] = {"corpus_index": CorpusIndex.open(paths)} if paths else {}
        self.settings = StepSettings(
            loss=self.loss,
            domains=self.domains,
            pad_id=self.tokenizer.pad_token_id or 0,
            micro_batch_size=cfg.micro_batch_size,
            domain_weights=cfg.domain_loss_weights or None,
            max_grad_norm=cfg.max_grad_norm,
            token_monitors=cfg.token_monitors > 0,
            autocast=self.autocast,
        )

    def _resume(self) -> None:
        cfg = self.config
        args = (self.student, self.optimizer, self.scheduler, self.env, cfg.fingerprint())
        found = resume_latest(cfg.output_dir, *args) if cfg.resume else None
        world = {"parallel": cfg.parallel, "world_size": self.env.world_size}
        if found is None:
            self.state = TrainerState(
                total_steps=cfg.steps, config_fingerprint=cfg.fingerprint(), **world
            )
            return
        path, state = found
        self.state = state.model_copy(update=world)
        self.console.print(f"resumed from {path} at step {self.state.step}")

    # ---- train -------------------------------------------------------------------------------
    def train(self) -> TrainerState:
        return asyncio.run(self._train())

    async def _train(self) -> TrainerState:
        try:
            async with summariser_resources(self.config.rollout.summariser) as summariser:
                self.resources.update(summariser)
                return await self._steps()
        finally:  # backends hold tasks and sessions of this event loop
            assert self.teachers is not None and self.engine is not None
            await self.teachers.aclose()
            await self.engine.aclose()

    async def _steps(self) -> TrainerState:
        cfg = self.config
        assert self.logger is not None
        loop = StepLoop(cfg.steps, cfg.log_every, self.logger, monitor_line, self._checkpoint)
        await run_steps(self, loop)
        self._save_final()
        return self.state

    def policy(self) -> Any:
        """The student's current weights in a plain module (`training/replica.py`: under
        FSDP2 a gathered replica, so every rank calls this at the same points)."""
        return self.replica.read(self.student, self.scheduler.last_epoch)

    def _checkpoint(self, state: TrainerState) -> Path | None:
        cfg = self.config
        args = (self.optimizer, self.scheduler, state, cfg.output_dir, self.env)
        return end_of_step(
            self.student, *args, cfg.keep_checkpoints, cfg.checkpoint_every, KILL_ENV
        )

    async def train_step(self, step: int) -> dict[str, Any]:
        """Roll out, score, update; returns the step's log record.

        With `rollout.max_staleness: 1` the step's rollouts were started during the previous
        step's update (a process's first step rolls out its own); after scoring, the engine
        takes this step's policy and the next step's rollouts run while this step's update
        runs in a worker thread. The step ends when both are done, so a checkpoint after it
        finds every episode of the next step stored (a resumed run reuses them)."""
        clock = [time.perf_counter()]
        assert self.engine is not None
        stream = self.config.rollout.max_staleness > 0
        trajs = self._prefetched.pop(step, None)
        synced: dict[str, Any] = {}
        # streaming syncs after scoring; a process's first step rolls out on this step's
        # policy (a resumed vLLM server holds the starting weights until synced)
        if not stream or (trajs is None and self.engine.version != step):
            synced = await self._sync(step)
        if trajs is None:
            trajs = await self.rollout(step)
        samples = rollout_samples(trajs)
        gap: dict[str, Any] = {}
        # an on-policy in-process snapshot IS the trainer; a stale one or a server is not
        if self.engine.kind != "hf" or stream:
            policy, pad = self.policy(), self.tokenizer.pad_token_id or 0
            if samples:
                gap = engine_kl(policy, samples, self.config.micro_batch_size, pad) or {}
        clock.append(time.perf_counter())
        scored = await self.score(samples)
        clock.append(time.perf_counter())
        if stream:
            synced = await self._sync(step) or synced
        upcoming = self._roll_out_next(step) if stream else None
        record: dict[str, Any] = {"step": step + 1}
        (count,) = all_reduce_sum([float(len(samples))], self.env)  # every rank decides alike
        update = partial(self.update, step, scored) if count else no_update
        done, following = await update_overlapping(update, upcoming, stream, clock)
        record.update(done)
        if following is not None:
            self._prefetched[step + 1] = following
        rows = all_gather_objects(episode_rows(trajs), self.env)
        record["rollouts"] = episode_metrics([row for part in rows for row in part])
        record["engine"] = {"backend": self.engine.kind, "synced": bool(synced), **synced, **gap}
        if stream:
            record["engine"] |= sample_staleness(trajs, step)
        record["seconds"] = clock[-1] - clock[0]
        phases = (*PHASES, "overlap_wait") if stream else PHASES
        record["phase_seconds"] = {p: clock[i + 1] - clock[i] for i, p in enumerate(phases)}
        return record

    async def _sync(self, step: int) -> dict[str, Any]:
        """The engine takes the student's weights (version `step`) on refresh steps."""
        assert self.engine is not None
        if step % self.config.rollout.refresh_every:
            return {}
        return await self.engine.sync(self.policy(), step)

    def _roll_out_next(self, step: int) -> asyncio.Task[list[Trajectory]] | None:
        """The next step's rollouts, started on the engine as it is now (None after the last)."""
        if step + 1 >= self.config.steps:
            return None
        return asyncio.create_task(self.rollout(step + 1))

    async def rollout(self, step: int) -> list[Trajectory]:
        cfg = self.config.rollout
        harness = HarnessConfig(
            sampling=SamplingParams(
                temperature=cfg.temperature,
                seed=self.config.seed + step,
                top_logprobs=self.config.token_monitors,  # the student's top-k, for the viewer
            ),
            workdir=self.config.output_dir / "workdirs",
            model_concurrency=cfg.concurrency,
        )
        assert self.engine is not None
        runner = EpisodeRunner(
            BackendAgent(self.engine.backend),
            lambda t: build_toolset(t.protocol.tools),
            harness,
            verify=self.verify,
            resources=self.resources,
        )
        rng = step_rng(self.config.seed, step, "prompts")
        prompts = pick_prompts(self.prompts, cfg.prompts_per_step, rng, cfg.domain_weights)
        tasks = step_tasks(prompts, step, cfg)
        assert self.rollouts is not None
        # episode seeds are seed + sample, whatever rank runs the prompt
        share = rank_share(tasks, self.env)
        return await self.rollouts.run(runner, share, harness.sampling.seed, self.engine.version)

    async def score(self, samples: list[RolloutSample]) -> _Scored:
        """Teacher scores of every sample, with what the loss kind needs."""
        requests = [
            ScoreRequest(s.domain, s.input_ids, s.positions(), full=self.loss.kind == "full_rkl")
            for s in samples
        ]
        if self.loss.kind in STUDENT_TOPK_KINDS:
            # the rollout weights: the snapshot, or the student itself before its update
            # (a vllm engine is synced every step for these kinds; DistillConfig checks it).
            # Stale rollouts: the student's own top-k, which a resumed run also has (it
            # holds no snapshot of the policy that sampled them)
            assert self.engine is not None
            stale = self.config.rollout.max_staleness > 0
            # (read on every rank, samples or none: under FSDP2 a read may gather)
            policy = self.policy() if stale else (self.engine.model or self.policy())
            ids = await asyncio.to_thread(
                policy_topk, policy, requests, self.loss.k, self.loss.excluded_ids
            )
            requests = [
                ScoreRequest(r.domain, r.input_ids, r.positions, student_ids=i)
                for r, i in zip(requests, ids, strict=True)
            ]
        assert self.teachers is not None
        scores = await score_sequences(self.teachers, requests, self.loss.k, self.cache)
        return _Scored(samples, scores)

    def update(self, step: int, scored: _Scored) -> dict[str, Any]:
        """`epochs` passes over the step's rollouts, each split into `minibatches` updates.

        Rollouts cost far more than updates on CPU, so reusing a batch buys optimizer steps
        cheaply; later updates are slightly off-policy, which a divergence at the visited
        contexts tolerates.
        """
        cfg = self.config
        rng = step_rng(cfg.seed, step, "minibatches")
        order = self._step_order(scored.samples)
        chosen = [
            [i for g in part if (i := order[g]) is not None]  # this rank's members of the part
            for part in minibatch_indices(len(order), cfg.minibatches, cfg.epochs, rng)
        ]
        records = [
            optimizer_update(
                self.student,
                self.optimizer,
                self.scheduler,
                [scored.samples[i] for i in part],
                [scored.scores[i] for i in part],
                self.settings,
                self.env,
            )
            for part in chosen
        ]
        if cfg.token_monitors:
            mine = self._monitors(step, scored, chosen, records)
            gathered = [m for part in all_gather_objects(mine, self.env) for m in part]
            if self.monitors is not None:
                self.monitors.write(m for _, m in sorted(gathered, key=lambda x: x[0]))
        return merge_updates(records)

    def _step_order(self, samples: list[RolloutSample]) -> list[int | None]:
        """Every sample of the step (all ranks), in one-process order: this rank's index of
        each, or None where another rank holds it."""
        ranked = all_gather_objects([sample_order(s) for s in samples], self.env)
        where = sorted((key, r, i) for r, keys in enumerate(ranked) for i, key in enumerate(keys))
        return [i if r == self.env.rank else None for _, r, i in where]

    def _monitors(
        self,
        step: int,
        scored: _Scored,
        chosen: list[list[int]],
        records: list[dict[str, Any]],
    ) -> list[tuple[tuple[int, int, int], SampleMonitors]]:
        """Each of this rank's samples' per-token monitors from its first update of the step,
        with its place in the step (`sample_order`)."""
        assert self.teachers is not None
        seen: dict[int, SampleMonitors] = {}
        for part, record in zip(chosen, records, strict=True):
            for local, values in record["positions"].items():
                i = part[local]
                if i in seen:
                    continue
                sample = scored.samples[i]
                teacher = self.teachers.name(sample.domain)
                k = self.config.token_monitors
                seen[i] = sample_monitors(step + 1, sample, teacher, scored.scores[i], values, k)
        return [(sample_order(scored.samples[i]), seen[i]) for i in sorted(seen)]

    def _save_final(self) -> None:
        cfg = self.config
        metadata = {
            DISTILL_METADATA: {
                "student": cfg.model,
                "steps": self.state.step,
                "domains": self.domains,
                "excluded_ids": list(self.loss.excluded_ids),
                "config": cfg.model_dump(mode="json"),
            }
        }
        out = save_final_model(self.student, self.tokenizer, cfg.final_path, self.env, metadata)
        self.console.print(f"final model: {out}")

    # ---- cleanup -----------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.rollouts is not None:
            self.rollouts.store.close()
        if self.engine is not None:
            self.engine.close()
        shutdown(self.env)


def _mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def merge_updates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One log record for the updates of a step: means of losses and monitors, the last lr."""
    domains: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        for d, m in r["domains"].items():
            domains[d].append(m)
    merged = {
        d: {key: _mean([m[key] for m in ms]) for key in ("loss", "kl", "coverage")}
        | {"tokens": sum(m["tokens"] for m in ms), "samples": sum(m["samples"] for m in ms)}
        for d, ms in sorted(domains.items())
    }
    return {
        "loss": sum(r["loss"] for r in records) / len(records),
        "lr": records[-1]["lr"],
        "grad_norm": _mean([r["grad_norm"] for r in records]),
        "updates": len(records),
        "domains": merged,
    }


def monitor_line(record: dict[str, Any]) -> str:
    """Per-domain kl / coverage and rollout pass / truncation rates of a step, one line."""
    parts = []
    for domain, m in sorted(record["domains"].items()):
        cov = "" if m["coverage"] is None else f" cov {m['coverage']:.3f}"
        parts.append(f"{domain}: kl {m['kl']:.4f}{cov}")
    engine = record.get("engine") or {}
    if engine.get("kl") is not None:
        sync = f" sync {engine['sync_seconds']:.1f}s" if engine.get("synced") else ""
        parts.append(f"engine kl {engine['kl']:.2e}{sync}")
    return " | ".join([*parts, *rollout_rates(record["rollouts"])])


def run_distill(config: DistillConfig, verify: Verify, console: Console | None = None) -> Any:
    """Train (or resume) one OPD run; returns the final model's directory."""
    distiller = Distiller(config, verify, console)
    try:
        distiller.setup()
        distiller.train()
    finally:
        distiller.cleanup()
    return config.final_path
