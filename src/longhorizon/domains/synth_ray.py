"""`synth --ray`: each proposal's episodes (solve, no-tool guess) on Ray workers.

The driver keeps everything that decides: the proposer, the KAG, the task and trajectory
stores, and the order of decisions (proposal order, so the same seed keeps the same tasks as
the single-process run). A `SynthWorker` builds the domain itself, from the registry, out of
(domain name, level, seed): its own world under its own folder (`out/workdirs/worker-<index>-
<pid>`, where its sandboxes live too), never the KAG (the world's evidence only feeds the
driver's proposer). It returns trajectories; the driver records them, once per id.

A worker killed mid-attempt: the attempt comes back as a Ray error and reruns on another
worker (`scaleout.ray_pool`, shared with `rollout --ray`); an episode's id is `task/role` and
its seed the run's, so the rerun is the same episode and overwrites its own KAG record.
Plug-in domains must be importable on the workers (`LONGHORIZON_DOMAINS` set there too).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import ray

from longhorizon.core import Task, Trajectory
from longhorizon.domains import registry
from longhorizon.domains.synth import SynthWorkerSpec
from longhorizon.harness import HarnessConfig, Limits
from longhorizon.models.registry import resolve_model
from longhorizon.models.render import ChatRenderer
from longhorizon.scaleout.ray_pool import start_actors, stream_on_workers
from longhorizon.synthesis.attempt import Attempt, attempt_episodes
from longhorizon.synthesis.run import SCRIPTED_TOKENIZER
from longhorizon.synthesis.types import Domain

__all__ = ["RayAttempts", "SynthWorker", "start_synth_workers"]


@ray.remote(max_restarts=-1, max_task_retries=0)
class SynthWorker:
    """One worker process: its own world, scripted roles and sandboxes; attempts concurrent."""

    def __init__(self, spec: SynthWorkerSpec, index: int) -> None:
        self.spec = spec
        self.folder = spec.out / "workdirs" / f"worker-{index}-{os.getpid()}"
        self.harness = HarnessConfig(sampling=spec.sampling, workdir=self.folder)
        self._domain: Domain | None = None
        self._limits: Limits | None = None

    async def pid(self) -> int:
        return os.getpid()

    async def attempt(self, task_json: str) -> tuple[str, str | None]:
        """The proposal's solve and guess (None: not tried), as JSON."""
        domain, limits = self._open()
        task = Task.model_validate_json(task_json)
        done = await attempt_episodes(domain, self.harness, limits, task, self.spec.seed)
        guess = None if done.guess is None else done.guess.model_dump_json()
        return done.solve.model_dump_json(), guess

    def _open(self) -> tuple[Domain, Limits]:
        """Built on the first attempt, synchronously (the other attempts wait for it)."""
        if self._domain is None or self._limits is None:
            from transformers import AutoTokenizer  # heavy: only in the worker that builds

            spec = registry.get(self.spec.domain)
            world = spec.open_world(spec.parse_level(self.spec.level), self.spec.seed, self.folder)
            names = resolve_model(self.spec.tokenizer or SCRIPTED_TOKENIZER)
            renderer = ChatRenderer(AutoTokenizer.from_pretrained(names))
            self._domain = spec.synth_domain(world, renderer, None)
            self._limits = Limits.from_config(self.harness)
        return self._domain, self._limits


def start_synth_workers(
    spec: SynthWorkerSpec, workers: int, per_worker: int, cpus_per_worker: float = 1.0
) -> list[ray.actor.ActorHandle]:
    """`workers` actors, each running up to `per_worker` attempts at once."""
    return start_actors(SynthWorker, spec, workers, per_worker, cpus_per_worker)


class RayAttempts:
    """The `AttemptRunner` of `synth --ray`: a batch's attempts on `workers`, streamed back."""

    def __init__(
        self, workers: list[ray.actor.ActorHandle], per_worker: int, max_reruns: int = 3
    ) -> None:
        self.workers, self.per_worker, self.max_reruns = workers, per_worker, max_reruns
        self.reruns = 0  # attempts sent to run again after their worker died

    async def attempts(self, tasks: list[Task]) -> AsyncIterator[tuple[int, Attempt]]:
        results = stream_on_workers(
            self.workers,
            list(enumerate(tasks)),
            lambda worker, item: worker.attempt.remote(item[1].model_dump_json()),
            per_worker=self.per_worker,
            name=lambda item: f"proposal {item[1].id}",
            max_reruns=self.max_reruns,
            on_rerun=self._rerun,
        )
        while True:  # ray.wait blocks: wait in a thread, so the event loop stays free
            result = await asyncio.to_thread(next, results, None)
            if result is None:
                return
            (index, _), (solve, guess) = result
            yield index, _attempt(solve, guess)

    def _rerun(self, item: tuple[int, Task]) -> None:
        del item
        self.reruns += 1


def _attempt(solve: str, guess: str | None) -> Attempt:
    parsed = () if guess is None else (Trajectory.model_validate_json(guess),)
    return Attempt(Trajectory.model_validate_json(solve), parsed)
