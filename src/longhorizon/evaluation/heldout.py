"""The held-out bench of any domain (`heldout_bench(spec)`), and its audit against training.

Held-out tasks come from the domain's own world (`DomainSpec.open_world`, at synthesis' level
and world seed) with seeds from a reserved range (>= `HELDOUT_SEED` = 1,000,000). Synthesis
seeds its proposer stream with small integers (`SynthConfig.seed`, 0 by default), so held-out
draws never reuse a synthesis draw. The same seed gives the same tasks, and a shorter list is
a prefix of a longer one. Each task runs as an episode with the domain's tools and resources
and is scored by the domain's one `verify`; an item scores 1 when every verdict passed.

The audit (given a training `TaskStore`) runs the 13-gram `ContaminationIndex` over the
held-out texts and drops items that overlap. The built-in domains are templated: questions and
prompts are built from a few dozen phrases, so almost every held-out item shares *some*
13-gram with a training set of a few hundred tasks, without sharing its content (on a
3000-entity world, 67 of 100 held-out search questions share a 13-gram with 400 training
questions; 43 of 50 instruction prompts with 200 training prompts). The default rule
therefore drops near duplicates: an item whose id or normalised text is a training task's,
or at least `containment` (0.9) of whose 13-grams occur in one single training task. The
strict rule (`any-13gram`: any shared 13-gram drops the item) is available; both counts are
reported either way.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from longhorizon.core.store import TaskStore
from longhorizon.core.task import Task
from longhorizon.domains import registry
from longhorizon.domains.spec import HELDOUT_SEED, DomainSpec, World
from longhorizon.evaluation.bench import Bench, Loaded, OnResults
from longhorizon.evaluation.episodes import run_episodes
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import NEAR_DUPLICATE_CONTAINMENT, EvalOptions
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent
from longhorizon.scaleout import EpisodeRules
from longhorizon.synthesis.decontam import DEFAULT_N, ContaminationIndex, ngram_keys, words

__all__ = ["Audit", "Drop", "TrainingIndex", "audit", "heldout_bench", "heldout_tasks"]

AuditRule = Literal["near-duplicate", "any-13gram"]


def check_reserved(seed: int) -> None:
    if seed < HELDOUT_SEED:
        raise ValueError(f"held-out seeds start at {HELDOUT_SEED:,} (synthesis uses small ones)")


def normalised(text: str) -> str:
    return " ".join(words(text))


@dataclass
class Drop:
    item_id: str
    reason: str
    train_id: str | None = None
    containment: float | None = None


@dataclass
class Audit:
    """What the audit saw and dropped (written into the bench's result.json)."""

    rule: str
    n: int
    containment: float
    train_store: str | None
    train_tasks: int
    generated: int
    kept: int
    shared_ngram_items: int  # items sharing any 13-gram with training: templates, mostly
    dropped: list[Drop] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["dropped_count"] = len(self.dropped)
        return data


class TrainingIndex:
    """Training tasks' ids, normalised texts and 13-grams (by task, for containment)."""

    def __init__(self, tasks: Iterable[Task], n: int = DEFAULT_N) -> None:
        self.n = n
        self.ids: set[str] = set()
        self.texts: dict[str, str] = {}
        self.grams: dict[bytes, list[str]] = defaultdict(list)
        self.contamination = ContaminationIndex(n)
        for task in tasks:
            self.ids.add(task.id)
            self.texts.setdefault(normalised(task.instruction), task.id)
            for key in ngram_keys(task.instruction, n):
                self.grams[key].append(task.id)
            self.contamination.add(task.id, [task.instruction])

    def __len__(self) -> int:
        return len(self.ids)

    def nearest(self, text: str) -> tuple[str | None, float]:
        """The training task holding the largest share of `text`'s n-grams, and that share."""
        keys = ngram_keys(text, self.n)
        counts: dict[str, int] = defaultdict(int)
        for key in keys:
            for task_id in set(self.grams.get(key, ())):
                counts[task_id] += 1
        if not counts:
            return None, 0.0
        best = max(counts, key=counts.__getitem__)
        return best, counts[best] / len(keys)

    def drop_reason(self, task: Task, rule: AuditRule, containment: float) -> Drop | None:
        if task.id in self.ids:
            return Drop(task.id, "same id", task.id, 1.0)
        same = self.texts.get(normalised(task.instruction))
        if same is not None:
            return Drop(task.id, "same text", same, 1.0)
        hit = self.contamination.check(task.id, task.instruction)
        if hit is None:
            return None
        if rule == "any-13gram":
            return Drop(task.id, f"shares {hit.shared_ngrams} 13-grams", hit.source)
        nearest, share = self.nearest(task.instruction)
        if share >= containment:
            return Drop(task.id, "near duplicate", nearest, round(share, 4))
        return None


def load_training(path: Path) -> list[Task]:
    if not path.is_dir():
        raise FileNotFoundError(f"--train-tasks {path}: not a TaskStore directory")
    store = TaskStore(path)
    try:
        return list(store)
    finally:
        store.close()


def audit(
    tasks: Sequence[Task],
    train_tasks: Path | None,
    *,
    rule: AuditRule = "near-duplicate",
    containment: float = NEAR_DUPLICATE_CONTAINMENT,
    n: int = DEFAULT_N,
) -> tuple[list[Task], Audit]:
    """The tasks that survive the audit against `train_tasks` (none given: all of them)."""
    training = TrainingIndex(load_training(train_tasks) if train_tasks else [], n)
    report = Audit(
        rule=rule,
        n=n,
        containment=containment,
        train_store=str(train_tasks) if train_tasks else None,
        train_tasks=len(training),
        generated=len(tasks),
        kept=0,
        shared_ngram_items=0,
    )
    kept: list[Task] = []
    for task in tasks:
        if training.contamination.check(task.id, task.instruction) is not None:
            report.shared_ngram_items += 1
        drop = training.drop_reason(task, rule, containment)
        if drop is None:
            kept.append(task)
        else:
            report.dropped.append(drop)
    report.kept = len(kept)
    return kept, report


# ---- the bench --------------------------------------------------------------------------------

METRICS = (Metric("pass_rate", ((1.0, Ratio()),), "episodes whose every verdict passed"),)
_WORLDS: dict[tuple[str, str, int, str], World] = {}  # one world per process and config


def _level(spec: DomainSpec[Any], options: EvalOptions) -> BaseModel:
    return spec.parse_level(options.levels.get(spec.name))


def _world(spec: DomainSpec[Any], level: BaseModel, seed: int, bench_dir: Path) -> World:
    """The domain's world, its resources under the bench dir (keyed by level and seed)."""
    config = level.model_dump_json()
    key = (spec.name, config, seed, str(bench_dir))
    if key not in _WORLDS:
        digest = hashlib.sha256(config.encode()).hexdigest()[:10]
        _WORLDS[key] = spec.open_world(level, seed, bench_dir / f"world-{seed}-{digest}")
    return _WORLDS[key]


def heldout_tasks(
    spec: DomainSpec[Any], world: World, n: int, seed: int = HELDOUT_SEED
) -> list[Task]:
    """The first n held-out tasks of the reserved stream `seed`."""
    check_reserved(seed)
    return world.heldout(n, seed)


def heldout_bench(spec: DomainSpec[Any]) -> Bench:
    """The `<domain>-heldout` bench: `spec.heldout_size` tasks unless --limit says fewer."""

    def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
        level = _level(spec, options)
        world = _world(spec, level, options.world_seed, bench_dir)
        size = options.limit or spec.heldout_size
        tasks = heldout_tasks(spec, world, size, options.heldout_seed)
        kept, report = audit(
            tasks, options.train_tasks, rule=options.audit_rule, containment=options.containment
        )
        info = {
            "domain": spec.name,
            "level": level.model_dump(mode="json"),
            "world": {"seed": options.world_seed, **world.info},
            "heldout_seed": options.heldout_seed,
            "audit": report.summary(),
        }
        return Loaded(kept, info)

    async def run(
        agent: Agent,
        items: list[Task],
        seed: int,
        options: EvalOptions,
        *,
        bench_dir: Path,
        on_results: OnResults | None = None,
    ) -> list[ItemResult]:
        world = _world(spec, _level(spec, options), options.world_seed, bench_dir)
        return await run_episodes(
            spec.bench,
            agent,
            items,
            seed,
            options,
            bench_dir=bench_dir,
            toolsets=spec.toolset,
            verify=spec.verify,
            resources=dict(world.resources),
            on_results=on_results,
            rules_for=partial(heldout_rules, spec.name, _level(spec, options), options.world_seed),
        )

    return Bench(
        name=spec.bench,
        metrics=METRICS,
        load_items=load_items,
        item_id=_task_id,
        run=run,
        description=f"held-out {spec.name} tasks (reserved seeds): {spec.description}",
    )


def heldout_rules(domain: str, level: BaseModel, seed: int, folder: Path) -> EpisodeRules:
    """A Ray worker's held-out runner rules: the domain's verifier and its world's resources,
    the world built in the worker under its own `folder` (from the registry, by name)."""
    spec = registry.get(domain)
    world = spec.open_world(spec.parse_level(level), seed, folder)
    return EpisodeRules(verify=spec.verify, resources=dict(world.resources))


def _task_id(task: Task) -> str:
    return task.id
