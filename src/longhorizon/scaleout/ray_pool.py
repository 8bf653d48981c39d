"""Work spread over Ray actors, results streamed back, a dead worker's work rerun elsewhere.

The one scheduler behind `rollout --ray` and `synth --ray`: it fills every actor up to
`per_worker` calls, least loaded first, and yields each result as it finishes. A call whose
actor died (SIGKILL, OOM, a lost node) comes back as a Ray error: the item goes to the front
of the queue and reruns on another actor, while Ray restarts the dead one (the actors are
made with `max_restarts=-1`) for later items. Callers make reruns harmless by giving every
item a deterministic id that their store writes once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import ray
from ray.exceptions import RayActorError, WorkerCrashedError

__all__ = ["WORKER_DEATHS", "WorkerLost", "start_actors", "stream_on_workers"]

# Errors that mean the worker process died, not that the item failed: rerun it elsewhere.
WORKER_DEATHS = (RayActorError, WorkerCrashedError)

ItemT = TypeVar("ItemT")
Call = Callable[[ray.actor.ActorHandle, ItemT], ray.ObjectRef]


class WorkerLost(RuntimeError):
    """An item whose workers kept dying (`max_reruns` times): the run stops, naming it."""


@dataclass
class _Job(Generic[ItemT]):
    item: ItemT
    lost: int = 0  # times its worker died under it
    avoid: int | None = None  # the worker it died on: rerun elsewhere when possible


def start_actors(
    actor: Any,
    spec: object,
    workers: int,
    per_worker: int,
    cpus_per_worker: float = 1.0,
    extra: tuple[object, ...] = (),
) -> list[ray.actor.ActorHandle]:
    """`workers` instances of the `@ray.remote` class `actor`, made as
    `actor(spec, index, *extra)`, each running up to `per_worker` calls at once."""
    options = {"num_cpus": cpus_per_worker, "max_concurrency": per_worker}
    return [actor.options(**options).remote(spec, index, *extra) for index in range(workers)]


def stream_on_workers(
    workers: list[ray.actor.ActorHandle],
    items: Iterable[ItemT],
    call: Call[ItemT],
    *,
    per_worker: int,
    name: Callable[[ItemT], str],
    max_reruns: int = 3,
    on_rerun: Callable[[ItemT], None] | None = None,
) -> Iterator[tuple[ItemT, Any]]:
    """(item, `ray.get` of `call(worker, item)`) for every item, in finishing order; `name`
    says which item in `WorkerLost`, `on_rerun` hears of each item sent to run again."""
    todo: deque[_Job[ItemT]] = deque(_Job(item) for item in items)
    in_flight: dict[ray.ObjectRef, tuple[_Job[ItemT], int]] = {}
    load = [0] * len(workers)
    while todo or in_flight:
        _submit(workers, todo, in_flight, load, per_worker, call)
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        for ref in ready:
            job, index = in_flight.pop(ref)
            load[index] -= 1
            try:
                value = ray.get(ref)
            except WORKER_DEATHS as exc:
                _requeue(job, index, todo, max_reruns, exc, name)
                if on_rerun is not None:
                    on_rerun(job.item)
                continue
            yield job.item, value


def _submit(
    workers: list[ray.actor.ActorHandle],
    todo: deque[_Job[ItemT]],
    in_flight: dict[ray.ObjectRef, tuple[_Job[ItemT], int]],
    load: list[int],
    per_worker: int,
    call: Call[ItemT],
) -> None:
    """Fill every worker up to `per_worker` calls, least loaded first; a rerun avoids the
    worker it died on unless that is the only one."""
    waiting: deque[_Job[ItemT]] = deque()
    while todo and min(load) < per_worker:
        job = todo.popleft()
        free = [i for i in range(len(workers)) if load[i] < per_worker]
        elsewhere = [i for i in free if i != job.avoid] if len(workers) > 1 else free
        if not elsewhere:
            waiting.append(job)
            continue
        index = min(elsewhere, key=lambda i: (load[i], i))
        in_flight[call(workers[index], job.item)] = (job, index)
        load[index] += 1
    todo.extendleft(reversed(waiting))


def _requeue(
    job: _Job[ItemT],
    index: int,
    todo: deque[_Job[ItemT]],
    max_reruns: int,
    exc: Exception,
    name: Callable[[ItemT], str],
) -> None:
    job.lost += 1
    if job.lost > max_reruns:
        raise WorkerLost(
            f"{name(job.item)}: its worker died {job.lost} times; last: {type(exc).__name__}: {exc}"
        ) from exc
    job.avoid = index
    todo.appendleft(job)  # first in line: it was started before everything still queued
