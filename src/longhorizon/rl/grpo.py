"""Stage 2: GRPO on multi-turn tool rollouts with verifier rewards, resumable like SFT and OPD.

    longhorizon rl --config rl.yaml [--set lr=1e-6 ...] [--dry-run]
    torchrun --nproc_per_node=2 -m longhorizon.cli.main rl --config rl.yaml --set parallel=ddp

Each step: the rollout engine, synced to the policy's weights (`serving/engine.py`: an
in-process snapshot, or a vLLM server with `rollout.backend: vllm`), rolls out G episodes for
each of the step's prompts through the harness (tools, budgets, context strategies; TRUNCATED
kept and handled by `objective.overlong`, ABORTED retried), the injected `verify` scores them
(reward 1 when every verdict passed), groups whose rewards are all equal are dropped and
refilled for up to `rollout.max_tries` rounds (dynamic sampling), and the policy makes one
optimizer update on the GRPO objective (`rl/objective.py`), or `minibatches x epochs` of them,
with the sampler's own logprobs as pi_old (with a vLLM engine, `objective.tis_cap` takes the
ratios against the trainer's logprobs from before the step's first update and weights them by
truncated importance sampling; the engine-vs-trainer KL is logged per step).

Streaming (`rollout.max_staleness: 1`): the next step's first round rolls out on the engine
(synced at this step's start) while this step's update runs in a worker thread; refills run
after the next step's sync. Each episode records the policy version that sampled it.

Setup / train / cleanup as SFT. Outputs in `output_dir`: config.yaml, metrics.jsonl,
tensorboard/, rollouts/, checkpoints/step-N/ and final/ (model + tokenizer + longhorizon_rl.json).

Under `parallel: ddp` (torchrun) every rank holds the policy, its reference and its own
snapshot; each round's prompts are split over the ranks (`rank_share`: prompt i on rank
i mod W, with the seed it has in one process), each rank rolls out its share into the shared
store, and the groups are gathered so that every rank sees the step's whole set: dynamic
sampling, advantages and metrics are those of one process. The kept samples are then split
over the ranks, normalised over the whole batch (`rl/step.py`), and the gradients summed.
Rank 0 alone writes metrics, checkpoints and the final model.
Under `parallel: fsdp2` the policy is sharded as OPD's student is (`distill/opd.py`: lockstep
forward passes, FSDP2's gradient reduction, rollouts on a gathered replica); the reference stays
whole on every rank.

Exact resume: a step's prompts and sampling seeds are functions of (seed, step), its episodes
have per-step ids (reused from the store when a killed run finished them), and the checkpoint
holds policy, optimizer, scheduler and RNG states (the reference is the starting model, reloaded).
Test hook: LONGHORIZON_RL_KILL_AT_STEP=N SIGKILLs the process right after step N is logged.
"""

from __future__ import annotations

import asyncio
import copy
import json
import shutil
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.syntax import Syntax
from transformers import AutoModelForCausalLM, AutoTokenizer

from longhorizon.core import SamplingParams, Task, Trajectory, TrajectoryStore
from longhorizon.core.files import write_text_atomic
from longhorizon.core.store import read_task_pool
from longhorizon.distill.rollouts import (
    StepRollouts,
    balanced_prompts,
    minibatch_indices,
    open_rollout_engine,
    pick_prompts,
    rollout_metrics,
    rollout_rates,
    sample_staleness,
    step_rng,
)
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig
from longhorizon.harness.episode import Verify
from longhorizon.models.registry import resolve_model
from longhorizon.rl.config import RLConfig
from longhorizon.rl.groups import GroupStats, first_round, prefilter_prompts, sample_groups
from longhorizon.rl.samples import (
    NO_KINDS,
    KindsByDomain,
    RLSample,
    group_samples,
    process_reward,
    rollout_reward,
)
from longhorizon.rl.step import merge_updates, optimizer_update, with_trainer_logprobs
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
    barrier,
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

__all__ = ["KILL_ENV", "RL_METADATA", "GRPOTrainer", "run_rl"]

KILL_ENV = "LONGHORIZON_RL_KILL_AT_STEP"
RL_METADATA = "longhorizon_rl.json"
PHASES = ("rollout", "train")
PREFILTER_FILE = "prefilter.json"


class GRPOTrainer:
    """setup() -> train() -> cleanup(); `run_rl` calls the three in order.

    `verify` gives the rewards (the CLI passes `longhorizon.domains.verify`) and `kinds` the
    roles of each domain's verdicts (`longhorizon.domains.verdict_kinds()`); both are injected
    so that training does not depend on the domains. `final_metadata` adds files to final/
    (the pipeline's teacher record).
    """

    def __init__(
        self,
        config: RLConfig,
        verify: Verify,
        console: Console | None = None,
        kinds: KindsByDomain | None = None,
        final_metadata: dict[str, dict[str, Any]] | None = None,
    ):
        self.config = config
        self.verify = verify
        self.kinds = dict(kinds or {})
        self.final_metadata = final_metadata or {}
        self.env: DistEnv = init_distributed(config.parallel)
        # Every rank runs the same loop; only rank 0 speaks.
        self.console = (console or Console()) if self.env.is_main else Console(quiet=True)
        self.state = TrainerState()
        self.logger: MetricsLogger | None = None
        self.rollouts: StepRollouts | None = None
        self.engine: RolloutEngine | None = None
        self.autocast: torch.dtype | None = None  # the loss's forward passes (`dtype`)
        # max_staleness 1: the next step's first round, rolled out during this step's update
        self._prefetched: dict[int, list[Trajectory]] = {}

    # ---- setup ---------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        seed_everything(cfg.seed)
        cfg.output_dir.mkdir(parents=True, exist_ok=True)
        if self.env.is_main:
            (cfg.output_dir / "config.yaml").write_text(cfg.to_yaml())
        self.console.rule(f"GRPO run {cfg.output_dir} ({self.env.world_size} rank(s))")
        self.console.print(Syntax(cfg.to_yaml(), "yaml"))
        tasks = read_task_pool(cfg.tasks)  # before the models: a bad path fails fast
        self._setup_models()
        self._check_rubrics(tasks)
        self.prompts = balanced_prompts(tasks)
        paths = [p for files in cfg.corpus.values() for p in files]
        self.resources: dict[str, Any] = {"corpus_index": CorpusIndex.open(paths)} if paths else {}
        self.optimizer = build_optimizer(self.policy, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, cfg.steps * cfg.updates_per_step)
        self._resume()
        self.engine = open_rollout_engine(
            cfg.model,
            cfg.rollout,
            cfg.output_dir,
            self.whole_policy(),
            self.tokenizer,
            self.state.step,
            self.env,
        )
        store = TrajectoryStore(cfg.output_dir / "rollouts")
        group = cfg.rollout.group_size
        self.rollouts = StepRollouts(store, cfg.rollout.concurrency, group)
        self.rollouts.load_from(self.state.step)
        self.logger = MetricsLogger(
            cfg.output_dir,
            enabled=self.env.is_main,
            total_steps=cfg.steps,
            start_step=self.state.step,
            tensorboard=cfg.tensorboard,
            console=self.console,
            name="grpo",
        )

    def _check_rubrics(self, tasks: list[Task]) -> None:
        """PAPO needs a process reward: refuse domains whose verifier has no rubric checks."""
        if self.config.objective.advantage != "papo":
            return
        bare = sorted({t.domain for t in tasks if not self.kinds.get(t.domain, NO_KINDS).rubric})
        if bare:
            raise ValueError(
                f"objective.advantage = papo needs rubric checks (the process reward); the "
                f"verifier of domain(s) {bare} has none: use objective.advantage = grpo"
            )

    def _setup_models(self) -> None:
        cfg = self.config
        path = resolve_model(cfg.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        # float32 weights, autocast to bfloat16 where `dtype` says so (as SFT)
        dtype, self.autocast = precision(cfg.dtype, self.env.device)
        policy = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        policy = policy.to(self.env.device)  # type: ignore[arg-type]
        self.reference = None
        if cfg.objective.kl_coef > 0:  # frozen starting policy (whole on every rank)
            self.reference = copy.deepcopy(policy).eval().requires_grad_(False)
        self.replica = PolicyReplica(policy, self.env)
        # ddp: not wrapped, the ranks' gradients are summed in `rl/step.py`
        self.policy = wrap_model(policy, self.env) if self.env.parallel == "fsdp2" else policy

    def whole_policy(self) -> Any:
        """The policy's current weights in a plain module (`training/replica.py`: under FSDP2
        a gathered replica, so every rank calls this at the same points)."""
        return self.replica.read(self.policy, self.scheduler.last_epoch)

    def _resume(self) -> None:
        cfg = self.config
        args = (self.policy, self.optimizer, self.scheduler, self.env, cfg.fingerprint())
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

    # ---- train ---------------------------------------------------------------------------------
    def train(self) -> TrainerState:
        return asyncio.run(self._train())

    async def _train(self) -> TrainerState:
        assert self.engine is not None
        try:
            async with summariser_resources(self.config.rollout.summariser) as summariser:
                self.resources.update(summariser)
                if self.config.rollout.prefilter_attempts:
                    # the starting policy
                    await self.engine.sync(self.whole_policy(), self.state.step)
                    await self._prefilter()
                return await self._steps()
        finally:  # the backend holds tasks of this event loop
            await self.engine.aclose()

    async def _steps(self) -> TrainerState:
        cfg = self.config
        assert self.logger is not None
        loop = StepLoop(cfg.steps, cfg.log_every, self.logger, progress_line, self._checkpoint)
        await run_steps(self, loop)
        self._save_final()
        return self.state

    def _checkpoint(self, state: TrainerState) -> Path | None:
        cfg = self.config
        args = (self.optimizer, self.scheduler, state, cfg.output_dir, self.env)
        return end_of_step(self.policy, *args, cfg.keep_checkpoints, cfg.save_every, KILL_ENV)

    async def train_step(self, step: int) -> dict[str, Any]:
        """Roll out groups (dynamic sampling), update; returns the step's log record.

        With `rollout.max_staleness: 1` the step's first round was rolled out during the
        previous step's update, on the policy from before it (refills run on this step's);
        the next step's first round runs while this step's update runs in a worker thread.
        The step ends when both are done, so a checkpoint finds the next round stored."""
        cfg = self.config
        clock = [time.perf_counter()]
        assert self.engine is not None
        stream = cfg.rollout.max_staleness > 0
        first = self._prefetched.pop(step, None)
        synced = await self.engine.sync(self.whole_policy(), step)
        groups, stats = await sample_groups(
            self._episodes,
            self._pick(step),
            cfg.rollout,
            cfg.objective,
            step,
            cfg.seed,
            self.kinds,
            first,
        )
        samples = [s for g in groups for s in group_samples(g, cfg.objective, self.kinds)]
        clock.append(time.perf_counter())
        upcoming = self._roll_out_next(step) if stream else None
        record: dict[str, Any] = {"step": step + 1}
        update = partial(self._update, step, samples) if samples else no_update  # all dropped
        done, following = await update_overlapping(update, upcoming, stream, clock)
        record.update(done)
        if following is not None:
            self._prefetched[step + 1] = following
        record |= step_metrics(stats, [t for g in groups for t in g], cfg, self.kinds)
        record["engine"] = engine_record(self.engine.kind, synced, record["domains"])
        if stream:
            record["engine"] |= sample_staleness(stats.seen, step)
        record["seconds"] = clock[-1] - clock[0]
        phases = (*PHASES, "overlap_wait") if stream else PHASES
        record["phase_seconds"] = {p: clock[i + 1] - clock[i] for i, p in enumerate(phases)}
        return record

    def _update(self, step: int, samples: list[RLSample]) -> dict[str, Any]:
        """`epochs` passes over the step's samples (the same list on every rank), each split
        into `minibatches` optimizer updates; each rank trains on its share of each part.

        After the first update the policy is no longer the sampler: the clipped ratio is taken
        against the sampler's logprobs, or under truncated IS against the trainer's from
        before the first update (read once, on the whole policy), which the engine-vs-trainer
        KL is also taken against, so that it measures the engine and not the updates."""
        cfg = self.config
        pad = self.tokenizer.pad_token_id or 0
        chosen = dict(enumerate(samples))
        parts = [rank_share(list(chosen), self.env)]  # one update: the samples in their order
        if cfg.updates_per_step > 1:
            rng = step_rng(cfg.seed, step, "minibatches")
            order = minibatch_indices(len(samples), cfg.minibatches, cfg.epochs, rng)
            parts = [rank_share(part, self.env) for part in order]
            needed = sorted({i for part in parts for i in part})
            scored = with_trainer_logprobs(
                self.whole_policy(),
                [samples[i] for i in needed],
                cfg.micro_batch_size,
                pad,
                self.autocast,
            )
            chosen = dict(zip(needed, scored, strict=True))
        records = [
            optimizer_update(
                self.policy,
                self.reference,
                self.optimizer,
                self.scheduler,
                [chosen[i] for i in part],
                cfg.objective,
                cfg.micro_batch_size,
                pad,
                cfg.max_grad_norm,
                self.env,
                self.autocast,
            )
            for part in parts
        ]
        return merge_updates(records)

    def _roll_out_next(self, step: int) -> asyncio.Task[list[Trajectory]] | None:
        """The next step's first round, started on the engine as it is now (None after the
        last step)."""
        if step + 1 >= self.config.steps:
            return None
        cfg = self.config
        tasks, seeds = first_round(self._pick(step + 1), cfg.rollout, step + 1, cfg.seed)
        return asyncio.create_task(self._episodes(tasks, seeds))

    async def _prefilter(self) -> None:
        """Keep the prompts whose attempts with the STARTING policy gave mixed outcomes; the
        kept ids are saved once (`prefilter.json`), so a resumed run keeps the same pool."""
        cfg = self.config
        saved = cfg.output_dir / PREFILTER_FILE
        tasks = [t for ts in self.prompts.values() for t in ts]
        if not saved.exists():
            if self.state.step:
                raise RuntimeError(f"{saved} is missing: the pre-filtered pool cannot be rebuilt")
            if self.env.is_main:
                shutil.rmtree(cfg.output_dir / "prefilter", ignore_errors=True)  # a killed try
            barrier(self.env)
            store = TrajectoryStore(cfg.output_dir / "prefilter")
            rollouts = StepRollouts(store, cfg.rollout.concurrency, cfg.rollout.prefilter_attempts)
            try:
                episodes = partial(self._episodes, rollouts=rollouts)
                kept = await prefilter_prompts(episodes, tasks, cfg.seed)
            finally:
                store.close()
            if self.env.is_main:  # every rank kept the same prompts (the attempts are gathered)
                write_text_atomic(saved, json.dumps([t.id for t in kept], indent=1) + "\n")
            barrier(self.env)
        ids = set(json.loads(saved.read_text()))
        kept = [t for t in tasks if t.id in ids]
        if not kept:
            raise ValueError("the prompt pre-filter kept no prompt (none had mixed outcomes)")
        self.console.print(f"prompt pre-filter: {len(kept)} of {len(tasks)} prompts kept")
        self.prompts = balanced_prompts(kept)

    def _pick(self, step: int) -> Any:
        """The step's prompt picker: round r draws `count` prompts from its own RNG."""

        def pick(round_: int, count: int) -> list[Task]:
            rng = step_rng(self.config.seed, step, f"prompts/{round_}")
            return pick_prompts(self.prompts, count, rng)

        return pick

    async def _episodes(
        self, tasks: list[Task], seeds: list[int], rollouts: StepRollouts | None = None
    ) -> list[Trajectory]:
        """The episodes of each task (its own seed per task), in task order: G of them, or
        as many as `rollouts` runs per task. Each rank runs its share of the tasks; every rank
        gets them all."""
        cfg = self.config.rollout
        harness = HarnessConfig(
            sampling=SamplingParams(temperature=cfg.temperature),
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
        rollouts = rollouts or self.rollouts
        assert rollouts is not None
        mine = rank_share(range(len(tasks)), self.env)
        version = self.engine.version
        runs = await asyncio.gather(
            *(rollouts.run(runner, [tasks[i]], seeds[i], version) for i in mine)
        )
        by_task: dict[int, list[Trajectory]] = {}
        # streamed: gathered while the update's collectives may run (another thread)
        side = self.config.rollout.max_staleness > 0
        for part in all_gather_objects(dict(zip(mine, runs, strict=True)), self.env, side=side):
            by_task.update(part)
        return [t for i in range(len(tasks)) for t in by_task[i]]

    def _save_final(self) -> None:
        cfg = self.config
        metadata = {
            RL_METADATA: {
                "policy": cfg.model,
                "steps": self.state.step,
                "algorithm": "grpo",
                "config": cfg.model_dump(mode="json"),
            },
            **self.final_metadata,
        }
        out = save_final_model(self.policy, self.tokenizer, cfg.final_path, self.env, metadata)
        self.console.print(f"final model: {out}")

    # ---- cleanup -------------------------------------------------------------------------------
    def cleanup(self) -> None:
        if self.logger is not None:
            self.logger.close()
        if self.rollouts is not None:
            self.rollouts.store.close()
        if self.engine is not None:
            self.engine.close()
        shutdown(self.env)


def engine_record(
    kind: str, synced: dict[str, Any], domains: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """The rollout engine's part of a step record: its kind, the weight sync's timings (when
    one happened) and the engine-vs-trainer KL over every trained token of the step."""
    tokens = sum(m["tokens"] for m in domains.values())
    kl = sum(m["engine_kl"] * m["tokens"] for m in domains.values()) / tokens if tokens else None
    return {"backend": kind, "synced": bool(synced), **synced, "kl": kl}


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    return mean, (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


def step_metrics(
    stats: GroupStats, kept: list[Trajectory], cfg: RLConfig, kinds: KindsByDomain | None = None
) -> dict[str, Any]:
    """Rewards of every rollout of the step (the policy's score) and of the kept groups (what
    was trained on), the process reward (rubric share) where the domains have rubrics,
    rollout shape, and what dynamic sampling did."""
    kinds = kinds or {}

    def reward(t: Trajectory) -> float | None:
        return rollout_reward(t, cfg.objective, kinds.get(t.domain, NO_KINDS))

    mean, std = _mean_std([r for t in stats.seen if (r := reward(t)) is not None])
    kept_mean, _ = _mean_std([r for t in kept if (r := reward(t)) is not None])
    rubric = [process_reward(t, kinds.get(t.domain, NO_KINDS)) for t in stats.seen]
    process, _ = _mean_std([p for p in rubric if p is not None])
    lengths = [t.usage.completion_tokens for t in stats.seen]
    return {
        "reward_mean": mean,
        "reward_std": std,
        "kept_reward_mean": kept_mean,
        "process_mean": process,
        "pass_rate": sum(t.passed for t in stats.seen) / len(stats.seen) if stats.seen else None,
        "groups": stats.record(),
        "response_tokens": sum(lengths) / len(lengths) if lengths else None,
        "rollouts": rollout_metrics(stats.seen),
    }


def progress_line(record: dict[str, Any]) -> str:
    """Reward, filtered share, clip fractions and KL of a step, one line."""
    g = record["groups"]
    parts = [f"groups kept {g['kept']}/{g['rolled']} in {g['rounds']} rounds"]
    if record["reward_mean"] is not None:
        parts.append(f"reward {record['reward_mean']:.3f}±{record['reward_std']:.3f}")
    for domain, m in sorted(record["domains"].items()):
        parts.append(
            f"{domain}: clip {m['clip_low']:.3f}/{m['clip_high']:.3f} kl {m['kl']:.5f} "
            f"H {m['entropy']:.3f}"
        )
    engine = record.get("engine") or {}
    if engine.get("backend") == "vllm" and engine.get("kl") is not None:
        sync = f" sync {engine['sync_seconds']:.1f}s" if engine.get("synced") else ""
        parts.append(f"engine kl {engine['kl']:.2e}{sync}")
    return " | ".join([*parts, *rollout_rates(record["rollouts"])])


def run_rl(
    config: RLConfig,
    verify: Verify,
    console: Console | None = None,
    kinds: KindsByDomain | None = None,
    final_metadata: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """Train (or resume) one GRPO run; returns the final model's directory. A run whose final
    model exists is not trained again (as `run_sft`)."""
    if config.resume and (config.final_path / RL_METADATA).exists():
        (console or Console()).print(f"{config.final_path} exists: nothing to train")
        return config.final_path
    trainer = GRPOTrainer(config, verify, console, kinds, final_metadata)
    try:
        trainer.setup()
        trainer.train()
    finally:
        trainer.cleanup()
    return config.final_path
