"""`eval --ray`: a held-out bench's episodes of one seed on Ray workers, stored by the driver.

The workers are `rollout --ray`'s (`scaleout.ray_rollouts.EpisodeWorker`, the same scheduler,
reruns and exactly-once store), started for the seed (its sampling is part of their runner)
and stopped after it. Each opens the model itself and builds the domain's verifier and world
resources with `rules_for`, in a folder of its own; the driver writes the trajectory store and
the items file as before, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
from functools import partial

import ray

from longhorizon.core import Task, TrajectoryStore
from longhorizon.evaluation.options import RayEpisodes
from longhorizon.harness import HarnessConfig
from longhorizon.scaleout import RolloutSpec, RulesFor
from longhorizon.scaleout.ray_cluster import connect
from longhorizon.scaleout.ray_rollouts import run_rollouts_ray, start_workers
from longhorizon.serving.summariser import SummariserConfig

__all__ = ["run_on_ray"]


async def run_on_ray(
    ray_options: RayEpisodes,
    harness: HarnessConfig,
    tasks: list[Task],
    store: TrajectoryStore,
    rules_for: RulesFor | None,
    show_progress: bool,
    summariser: SummariserConfig | None = None,
) -> None:
    """Every task not yet in `store`, one episode each, on `ray_options.workers` workers."""
    address = None if ray_options.address == "local" else ray_options.address
    connect(address, num_cpus=ray_options.workers)
    spec = RolloutSpec(
        model=ray_options.model,
        backend=ray_options.backend,
        base_urls=() if ray_options.base_url is None else (ray_options.base_url,),
        tokenizer=ray_options.tokenizer,
        harness=harness,
        summariser=summariser,
    )
    per_worker = harness.model_concurrency
    workers = start_workers(spec, ray_options.workers, per_worker, rules_for=rules_for)
    try:  # ray.wait blocks: wait in a thread, so the event loop stays free
        run = partial(run_rollouts_ray, per_worker=per_worker, show_progress=show_progress)
        await asyncio.to_thread(run, workers, tasks, store)
    finally:
        for worker in workers:
            ray.kill(worker)
