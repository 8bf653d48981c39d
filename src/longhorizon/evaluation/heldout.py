"""Held-out splits of the built-in domains, and their audit against a training task store.

Held-out tasks come from the domains' own generators with seeds from a reserved range
(>= `HELDOUT_SEED` = 1,000,000). Synthesis seeds its proposer stream with small integers
(`SynthConfig.seed`, 0 by default), so held-out draws never reuse a synthesis draw. The
same seed gives the same tasks, and a shorter list is a prefix of a longer one.

The audit (given a training `TaskStore`) runs the 13-gram `ContaminationIndex` over the
held-out texts and drops items that overlap. Both domains are templated: questions and
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

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from longhorizon.core.task import Task
from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.evaluation.options import HELDOUT_SEED, NEAR_DUPLICATE_CONTAINMENT
from longhorizon.synthesis.decontam import DEFAULT_N, ContaminationIndex, ngram_keys, words

AuditRule = Literal["near-duplicate", "any-13gram"]


def check_reserved(seed: int) -> None:
    if seed < HELDOUT_SEED:
        raise ValueError(f"held-out seeds start at {HELDOUT_SEED:,} (synthesis uses small ones)")


def search_tasks(encyclopedia: Any, n: int, seed: int = HELDOUT_SEED) -> list[Task]:
    """n held-out search questions over `encyclopedia` (the world the tools search)."""
    from longhorizon.domains.search import propose_tasks

    check_reserved(seed)
    return propose_tasks(encyclopedia, n, seed=seed)


def instruction_tasks(
    n: int, seed: int = HELDOUT_SEED, level: InstructionLevel | None = None
) -> list[Task]:
    """n held-out instruction tasks at synthesis' level (the full domain by default)."""
    from longhorizon.domains.instruction import propose_tasks

    check_reserved(seed)
    return propose_tasks(n, seed=seed, level=level)


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
    from longhorizon.core.store import TaskStore

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
