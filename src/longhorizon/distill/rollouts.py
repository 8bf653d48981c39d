"""The rollouts of one OPD step: balanced prompts, episodes on the snapshot, kept in memory.

Every step draws its prompts from its own RNG (seeded by run seed and step) and gives its
episodes ids of the form `TASK@stepS.I#SAMPLE`, so a resumed step asks for exactly the episodes
it asked for before. Finished episodes are streamed to the store as they end and handed to the
trainer in memory; the store is read once, at start, for the episodes of steps a killed run had
begun (they are reused, not run again).
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core import Status, Task, Trajectory, TrajectoryStore
from longhorizon.core.tokens import leaf_calls, sequence_logprobs
from longhorizon.distill.batch import RolloutSample
from longhorizon.distill.config import EngineRollout
from longhorizon.distill.shared_engine import SharedServerEngine
from longhorizon.harness import EpisodeRunner, trajectory_id
from longhorizon.models.registry import resolve_model
from longhorizon.serving.engine import RolloutEngine, open_engine
from longhorizon.training.distributed import DistEnv

__all__ = [
    "POLICY_VERSION",
    "StepRollouts",
    "balanced_prompts",
    "domain_slots",
    "episode_metrics",
    "episode_rows",
    "minibatch_indices",
    "open_rollout_engine",
    "pick_prompts",
    "rollout_metrics",
    "rollout_samples",
    "sample_order",
    "sample_staleness",
    "step_rng",
    "step_tasks",
]

STEP_ID = re.compile(r"@step(\d+)\.(\d+)#(\d+)$")
POLICY_VERSION = "policy_version"  # metadata key: the trainer step whose weights sampled it


def step_rng(seed: int, step: int, purpose: str) -> random.Random:
    """The RNG of one step and purpose: independent of what earlier steps drew (exact resume)."""
    return random.Random(f"{seed}/{step}/{purpose}")


def balanced_prompts(tasks: list[Task]) -> dict[str, list[Task]]:
    """Tasks by domain with duplicate instructions removed (first wins)."""
    seen: set[str] = set()
    by_domain: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if task.instruction not in seen:
            seen.add(task.instruction)
            by_domain[task.domain].append(task)
    return dict(by_domain)


def domain_slots(domains: list[str], count: int, weights: dict[str, float] | None) -> list[str]:
    """The domain of each of `count` prompts: weighted round robin, every domain at least once."""
    share = {d: (weights or {}).get(d, 1.0) for d in domains}
    slots: list[str] = []
    credit = dict.fromkeys(domains, 0.0)
    total = sum(share.values())
    for _ in range(count):
        for d in domains:
            credit[d] += share[d] / total
        best = max(domains, key=lambda d: credit[d])
        credit[best] -= 1.0
        slots.append(best)
    missing = [d for d in domains if d not in slots]
    return missing + slots[: count - len(missing)] if missing and count >= len(domains) else slots


def pick_prompts(
    by_domain: dict[str, list[Task]],
    count: int,
    rng: random.Random,
    weights: dict[str, float] | None = None,
) -> list[Task]:
    """`count` prompts split over the domains by weight (even by default), each domain >= 1."""
    return [rng.choice(by_domain[d]) for d in domain_slots(sorted(by_domain), count, weights)]


def step_tasks(prompts: list[Task], step: int, cfg: EngineRollout) -> list[Task]:
    """The step's episodes: its own task ids (`TASK@stepS.I`) and the rollout budgets."""
    return [cfg.budgeted(t, f"{t.id}@step{step}.{i}") for i, t in enumerate(prompts)]


def minibatch_indices(n: int, minibatches: int, epochs: int, rng: random.Random) -> list[list[int]]:
    """Sample indices of each optimizer step: every epoch a fresh shuffle, split evenly."""
    steps: list[list[int]] = []
    for _ in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        parts = min(minibatches, n)
        steps.extend(order[m::parts] for m in range(parts))
    return steps


def open_rollout_engine(
    model: str,
    rollout: EngineRollout,
    output_dir: Path,
    policy: Any,
    tokenizer: Any,
    step: int,
    env: DistEnv | None = None,
) -> RolloutEngine:
    """The run's rollout engine (`rollout.backend`) for a `policy` that holds step `step`'s
    weights (`model`: what the run started from; a vLLM server it starts loads that). Under
    DDP (`env` with several ranks) a vLLM engine is one server for all ranks."""
    path = resolve_model(model)
    if rollout.backend == "vllm" and env is not None and env.world_size > 1:
        return SharedServerEngine.open(path, rollout.vllm, output_dir, rollout.concurrency, env)
    return open_engine(
        rollout.backend,
        policy,
        tokenizer,
        model_path=path,
        vllm=rollout.vllm,
        workdir=output_dir,
        concurrency=rollout.concurrency,  # one batch per turn wave
        version=step,
    )


def rollout_samples(trajs: list[Trajectory]) -> list[RolloutSample]:
    return [
        RolloutSample(t.domain, seq.input_ids, seq.loss_mask, t.id, j, _engine_logprobs(t, leaf))
        for t in trajs
        for j, (seq, leaf) in enumerate(zip(t.token_sequences(), leaf_calls(t.calls), strict=True))
        if any(seq.loss_mask[1:])
    ]


def _engine_logprobs(traj: Trajectory, leaf: int) -> list[float] | None:
    try:
        return sequence_logprobs(traj.calls, leaf)
    except ValueError:  # a backend that returns no logprobs: no engine-vs-trainer KL
        return None


def sample_order(sample: RolloutSample) -> tuple[int, int, int]:
    """Where a sample of step rollouts stands in a one-process step: (prompt index, sample of
    that prompt, sequence of the trajectory), read from its `TASK@stepS.I#k` id."""
    match = STEP_ID.search(sample.trajectory_id)
    if match is None:
        raise ValueError(f"{sample.trajectory_id!r} is not a step rollout id (TASK@stepS.I#k)")
    return int(match.group(2)), int(match.group(3)), sample.sequence


def sample_staleness(trajs: list[Trajectory], step: int) -> dict[str, int | None]:
    """The policy version that sampled step `step`'s episodes (the oldest recorded) and how
    many updates it is behind the policy the step trains (version `step`)."""
    versions = [t.metadata[POLICY_VERSION] for t in trajs if POLICY_VERSION in t.metadata]
    if not versions:
        return {"policy_version": None, "staleness": None}
    return {"policy_version": min(versions), "staleness": step - min(versions)}


EpisodeRow = tuple[str, bool, bool, int]  # domain, passed, truncated, tool calls


def episode_rows(trajs: list[Trajectory]) -> list[EpisodeRow]:
    """What `rollout_metrics` reads of each episode (small: gathered from every rank)."""
    return [(t.domain, t.passed, t.status is Status.TRUNCATED, t.usage.tool_calls) for t in trajs]


def rollout_metrics(trajs: list[Trajectory]) -> dict[str, dict[str, float]]:
    """`episode_metrics` of these episodes (a trainer with ranks gathers the rows first)."""
    return episode_metrics(episode_rows(trajs))


def episode_metrics(rows: list[EpisodeRow]) -> dict[str, dict[str, float]]:
    """Per domain: episodes, success and truncation rates, tool calls per episode."""
    by_domain: dict[str, list[EpisodeRow]] = defaultdict(list)
    for row in rows:
        by_domain[row[0]].append(row)
    return {
        d: {
            "episodes": float(len(rs)),
            "success": sum(r[1] for r in rs) / len(rs),
            "truncation": sum(r[2] for r in rs) / len(rs),
            "tool_calls": sum(r[3] for r in rs) / len(rs),
        }
        for d, rs in by_domain.items()
    }


@dataclass
class StepRollouts:
    """Runs a step's episodes; streams them to `store`; reuses those stored by a killed run."""

    store: TrajectoryStore
    concurrency: int
    samples_per_prompt: int

    def __post_init__(self) -> None:
        self._stored: dict[str, Trajectory] = {}

    def load_from(self, first_step: int) -> None:
        """Index the stored episodes of steps >= first_step (one pass over the store)."""
        for traj in self.store:
            match = STEP_ID.search(traj.id)
            if match and int(match.group(1)) >= first_step:
                self._stored[traj.id] = traj

    async def run(
        self, runner: EpisodeRunner, tasks: list[Task], seed: int | None, version: int | None = None
    ) -> list[Trajectory]:
        """The step's finished episodes in job order (ABORTED ones retried, then dropped);
        `version`, the policy version that samples them, is kept in each new episode's
        metadata (`POLICY_VERSION`)."""
        jobs = [(t, s) for t in tasks for s in range(self.samples_per_prompt)]
        results: list[Trajectory | None] = [None] * len(jobs)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(len(jobs)):
            queue.put_nowait(i)

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                task, sample = jobs[i]
                results[i] = await self._episode(runner, task, sample, seed, version)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(jobs)) or 1)))
        return [t for t in results if t is not None]

    async def _episode(
        self, runner: EpisodeRunner, task: Task, sample: int, seed: int | None, version: int | None
    ) -> Trajectory | None:
        tid = trajectory_id(task, sample)
        if tid in self._stored:
            return self._stored.pop(tid)
        seed = None if seed is None else seed + sample
        traj = await runner.run(task, tid, seed=seed)
        for _ in range(runner.config.abort_retries):
            if traj.status is not Status.ABORTED:
                break
            traj = await runner.run(task, tid, seed=seed)
        if traj.status is Status.ABORTED:
            return None
        if version is not None:
            traj.metadata[POLICY_VERSION] = version
        self.store.add(traj)
        return traj


def rollout_rates(rollouts: dict[str, dict[str, float]]) -> list[str]:
    """`rollout_metrics` as console text: each domain's pass and truncation rates."""
    return [
        f"{domain} pass {r['success']:.0%} trunc {r['truncation']:.0%}"
        for domain, r in sorted(rollouts.items())
    ]
