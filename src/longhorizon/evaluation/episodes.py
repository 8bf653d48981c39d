"""Held-out benchmarks run as agent episodes through the real harness, scored by the verifier.

Each task runs once per seed with `EpisodeRunner` + `run_rollouts` (the domain's tools,
budgets, context strategy and verifier, exactly as in synthesis and rollouts); trajectories
go to `trajectories-seed<k>/` beside the items file, so a rerun reuses finished episodes.
Score = 1 when every verdict passed. An ABORTED episode (the backend failed after retries)
yields no item result: a rerun tries it again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from longhorizon.core import Task, Trajectory, TrajectoryStore
from longhorizon.evaluation.bench import OnResults
from longhorizon.evaluation.options import EvalOptions, sampling_for_seed
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness import EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.harness.agent import Agent
from longhorizon.harness.episode import Verify
from longhorizon.harness.rollout import trajectory_id
from longhorizon.scaleout import RulesFor
from longhorizon.serving.summariser import summariser_resources
from longhorizon.tools.base import ToolSet


def with_budgets(task: Task, options: EvalOptions) -> Task:
    """The task under the run's budget overrides (--max-turns, --max-tokens, L_ctx)."""
    return task.with_budgets(options.max_turns, options.max_tokens, options.max_context_tokens)


def item_result(bench: str, task: Task, traj: Trajectory, seed: int) -> ItemResult:
    """The episode's score and what it did; a task's hop count and tool steps (search
    levels) come along, so results break down by horizon."""
    horizon = {k: task.metadata[k] for k in ("hops", "tool_steps") if k in task.metadata}
    return ItemResult(
        bench=bench,
        item_id=task.id,
        seed=seed,
        score=float(traj.passed),
        prediction=traj.final_answer,
        reference=task.answer,
        details={
            "status": traj.status.value,
            "status_reason": traj.status_reason,
            "verdicts": {v.verifier: v.passed for v in traj.verdicts},
            "model_calls": traj.usage.model_calls,
            "tool_calls": traj.usage.tool_calls,
            "completion_tokens": traj.usage.completion_tokens,
            "trajectory": traj.id,
            **horizon,
        },
    )


async def run_episodes(
    bench: str,
    agent: Agent,
    tasks: list[Task],
    seed: int,
    options: EvalOptions,
    *,
    bench_dir: Path,
    toolsets: Callable[[Task], ToolSet],
    verify: Verify,
    resources: dict[str, Any] | None = None,
    on_results: OnResults | None = None,
    rules_for: RulesFor | None = None,
) -> list[ItemResult]:
    """One episode per task under `seed`; item results in task order (ABORTED ones left out).
    With `options.ray`, on Ray workers that build `toolsets`' equal, `verify` and `resources`
    themselves with `rules_for`."""
    tasks = [with_budgets(t, options) for t in tasks]
    config = HarnessConfig(
        sampling=sampling_for_seed(seed, options.tokens(), options.temperature),
        workdir=bench_dir / "workdirs" / f"seed{seed}",
        model_concurrency=options.batch_size,
        tool_concurrency=options.batch_size,
    )
    store = TrajectoryStore(bench_dir / f"trajectories-seed{seed}")
    try:
        if options.ray is not None:
            from longhorizon.evaluation.ray_episodes import run_on_ray  # Ray: an optional extra

            await run_on_ray(
                options.ray,
                config,
                tasks,
                store,
                rules_for,
                options.show_progress,
                summariser=options.summariser,
            )
        else:
            async with summariser_resources(options.summariser) as summariser:
                tools = {**(resources or {}), **summariser}
                runner = EpisodeRunner(agent, toolsets, config, verify=verify, resources=tools)
                await run_rollouts(
                    runner,
                    tasks,
                    store,
                    concurrency=options.batch_size,
                    show_progress=options.show_progress,
                )
        done = {t.id: t for t in store}
    finally:
        store.close()
    results = [
        item_result(bench, task, done[trajectory_id(task, 0)], seed)
        for task in tasks
        if trajectory_id(task, 0) in done
    ]
    if on_results is not None:
        on_results(results)
    return results
