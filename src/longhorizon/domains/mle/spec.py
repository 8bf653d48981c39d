"""The MLE domain as one `DomainSpec`: competitions from scikit-learn's datasets and generated
tabular and time-series tasks, the solution-tree tools, a scripted expert, one verifier, and
held-out competitions that synthesis never proposes."""

from __future__ import annotations

import random
from pathlib import Path

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.mle.expert import expert_script
from longhorizon.domains.mle.kag import record_competition, record_tree
from longhorizon.domains.mle.level import MLELevel
from longhorizon.domains.mle.tasks import (
    DOMAIN,
    VERIFIERS,
    draw_recipe,
    mle_protocol,
    screen,
    task_from_recipe,
)
from longhorizon.domains.mle.verify import verify
from longhorizon.domains.spec import DomainSpec, World, fixed_turn_tokens
from longhorizon.harness.agent import Script
from longhorizon.kag import KnowledgeActionGraph

__all__ = ["SPEC", "MLEProposer", "guess_without_tools", "heldout_tasks"]

MIN_TOOL_STEPS = 4  # two roots run: at least two writes and two executions


class MLEProposer:
    """Competitions from the synthesis split; once the world is loaded into a KAG, each
    proposal's competition goes in, and each solved episode's tree at its feedback."""

    def __init__(self, level: MLELevel, seed: int = 0) -> None:
        self.level, self.seed = level, seed
        self.kag: KnowledgeActionGraph | None = None

    def propose(self, rng: random.Random) -> Task | None:
        task = task_from_recipe(draw_recipe(self.level, rng, heldout=False), self.level, self.seed)
        if self.kag is not None:
            record_competition(self.kag, task)
        return task

    def feedback(self, task: Task, reasons: list[str]) -> None:
        """Write the solver's tree (accepted or not: rejected trees are negative evidence)."""
        del reasons
        if self.kag is not None:
            record_tree(self.kag, task, f"{task.id}/solve")


def heldout_tasks(level: MLELevel, n: int, seed: int) -> list[Task]:
    """n learnable held-out competitions (never proposed in synthesis); the same seed gives
    the same tasks and a shorter list is a prefix of a longer one."""
    rng = random.Random(f"mle-heldout:{seed}")
    tasks: dict[str, Task] = {}
    while len(tasks) < n:
        task = task_from_recipe(draw_recipe(level, rng, heldout=True), level)
        if screen(task) is None:
            tasks.setdefault(task.id, task)
    return list(tasks.values())


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: nothing is committed, so nothing can pass."""
    del messages
    return "<answer>I would predict the most common training value.</answer>"


def open_world(level: MLELevel, seed: int, resource_dir: Path) -> World:
    """Competitions are rebuilt from each task's recipe; nothing is written up front."""
    del resource_dir
    proposer = MLEProposer(level, seed)

    def expert(task: Task) -> Script:
        return expert_script(task, error_rate=level.expert_error_rate, seed=seed)

    def load(kag: KnowledgeActionGraph) -> None:
        proposer.kag = kag

    return World(
        proposer=proposer,
        heldout=lambda n, heldout_seed: heldout_tasks(level, n, heldout_seed),
        expert=expert,
        guesser=guess_without_tools,
        load_kag=load,
        info={"seed": seed, "heldout": "wine, and a quarter of every other source's recipes"},
        screen=screen,
    )


SPEC: DomainSpec[MLELevel] = DomainSpec(
    name=DOMAIN,
    description="local ML competitions (scikit-learn datasets, generated tabular and time "
    "series) solved by growing a tree of executable solutions",
    level=MLELevel,
    protocol=mle_protocol(),
    verdicts=verify,
    verifiers=VERIFIERS,
    open_world=open_world,
    min_tool_steps=MIN_TOOL_STEPS,
    heldout_size=20,
    extra_benches=("mle-medals",),
    tool_steps=MLELevel.tool_steps,
    turn_tokens=fixed_turn_tokens(789),  # results/tiny-six-seed0-199ecb0/turn-lengths.json
)
