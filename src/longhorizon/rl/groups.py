"""Dynamic sampling: roll out groups, drop those whose rewards are all equal, refill.

Round r of step s draws the prompts still missing from its own RNG (`pick(r, count)`) and gives
them episode ids `TASK@step{s}.{k}` numbered across the rounds, so a resumed step asks for
exactly the episodes the killed run asked for. Each group samples with its own seed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from longhorizon.core import Status, Task, Trajectory
from longhorizon.distill.rollouts import step_rng
from longhorizon.rl.config import GRPOObjective, RLRolloutConfig
from longhorizon.rl.samples import (
    KindsByDomain,
    informative,
    mixed_outcome,
    rollout_advantages,
)

__all__ = [
    "GroupStats",
    "first_round",
    "keep_mixed_outcome",
    "prefilter_prompts",
    "round_jobs",
    "sample_groups",
]

Episodes = Callable[[list[Task], list[int]], Awaitable[list[Trajectory]]]
Pick = Callable[[int, int], list[Task]]


@dataclass
class GroupStats:
    rolled: int = 0  # groups rolled out this step, every round
    kept: int = 0
    rounds: int = 0
    truncated: int = 0  # rollouts that hit a budget (handled by `objective.overlong`)
    seen: list[Trajectory] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        filtered = (self.rolled - self.kept) / self.rolled if self.rolled else 0.0
        return {
            "rolled": self.rolled,
            "kept": self.kept,
            "rounds": self.rounds,
            "filtered_share": filtered,
            "truncated": self.truncated,
        }


def round_jobs(
    pick: Pick, cfg: RLRolloutConfig, step: int, seed: int, round_: int, need: int, start: int
) -> tuple[list[Task], list[int]]:
    """Round `round_` of step `step`: `need` prompts as episode tasks numbered from `start`,
    and each group's sampling seed."""
    prompts = pick(round_, need)
    tasks = [cfg.budgeted(t, f"{t.id}@step{step}.{start + i}") for i, t in enumerate(prompts)]
    rng = step_rng(seed, step, f"seeds/{round_}")
    return tasks, [rng.randrange(2**31) for _ in tasks]


def first_round(
    pick: Pick, cfg: RLRolloutConfig, step: int, seed: int
) -> tuple[list[Task], list[int]]:
    """The jobs of a step's first round (what streaming rolls out during the previous update)."""
    return round_jobs(pick, cfg, step, seed, 0, cfg.prompts_per_step, 0)


def _by_task(trajs: list[Trajectory], tasks: list[Task]) -> list[list[Trajectory]]:
    groups: dict[str, list[Trajectory]] = {t.id: [] for t in tasks}
    for traj in trajs:
        groups[traj.task_id].append(traj)
    return [groups[t.id] for t in tasks]


async def sample_groups(
    episodes: Episodes,
    pick: Pick,
    cfg: RLRolloutConfig,
    objective: GRPOObjective,
    step: int,
    seed: int = 0,
    kinds: KindsByDomain | None = None,
    first: list[Trajectory] | None = None,
) -> tuple[list[list[Trajectory]], GroupStats]:
    """Up to `prompts_per_step` groups; with dynamic sampling only informative ones, after at
    most `max_tries` rounds (fewer groups when the rounds run out). `first`: the first
    round's episodes, already rolled out (streaming)."""
    stats, kept = GroupStats(), list[list[Trajectory]]()
    for round_ in range(cfg.max_tries):
        need = cfg.prompts_per_step - len(kept)
        tasks, seeds = round_jobs(pick, cfg, step, seed, round_, need, stats.rolled)
        trajs = first if round_ == 0 and first is not None else await episodes(tasks, seeds)
        stats.rolled, stats.rounds = stats.rolled + len(tasks), round_ + 1
        stats.seen.extend(trajs)
        stats.truncated += sum(t.status is Status.TRUNCATED for t in trajs)
        for group in _by_task(trajs, tasks):
            if not cfg.dynamic_sampling or informative(
                rollout_advantages(group, objective, kinds)[0]
            ):
                kept.append(group)
        if len(kept) >= cfg.prompts_per_step or not cfg.dynamic_sampling:
            break
    stats.kept = len(kept)
    return kept, stats


def keep_mixed_outcome(tasks: list[Task], attempts: list[list[Trajectory]]) -> list[Task]:
    """The prompt-pool pre-filter: tasks whose attempts with the starting policy both passed
    and failed (the report keeps search prompts with mixed outcomes over 5 attempts)."""
    return [
        t
        for t, tries in zip(tasks, attempts, strict=True)
        if mixed_outcome([x.passed for x in tries])
    ]


async def prefilter_prompts(episodes: Episodes, tasks: list[Task], seed: int) -> list[Task]:
    """Attempt every task (as many times as `episodes` runs each) and keep the mixed ones."""
    attempt = [t.model_copy(update={"id": f"{t.id}@prefilter"}) for t in tasks]
    rng = step_rng(seed, -1, "prefilter")
    trajs = await episodes(attempt, [rng.randrange(2**31) for _ in attempt])
    return keep_mixed_outcome(tasks, _by_task(trajs, attempt))
