"""The tool-calling domain as one `DomainSpec`: two stateful worlds (retail, travel), the
tool-interaction graph in the KAG, tasks by backward graph search with screening, a scripted
persona behind ask_user, the scripted expert and a held-out split over held-out world seeds."""

from __future__ import annotations

import random
from pathlib import Path

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.spec import HELDOUT_SEED, DomainSpec, World, fixed_turn_tokens
from longhorizon.domains.tool.expert import expert_script
from longhorizon.domains.tool.graph import DOMAIN, RUBRICS, load_into_kag
from longhorizon.domains.tool.level import ToolLevel
from longhorizon.domains.tool.tasks import propose_task, protocol, screen
from longhorizon.domains.tool.verify import VERIFIERS, verify
from longhorizon.harness.agent import Script

__all__ = ["SPEC", "ToolProposer", "guess_without_tools", "heldout_tasks"]

MIN_TOOL_STEPS = 3  # authenticate, find the object, act on it (or read it)


class ToolProposer:
    """Candidates over world seeds below HELDOUT_SEED; screening (not the proposer) rejects
    unsound ones, so every rejection is counted by its rule. Nothing is learnt from feedback."""

    def __init__(self, level: ToolLevel, seed: int = 0) -> None:
        self.level, self.seed = level, seed

    def propose(self, rng: random.Random) -> Task | None:
        return propose_task(self.level, rng, world_seed=rng.randrange(HELDOUT_SEED), seed=self.seed)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        del task, reasons


def heldout_tasks(level: ToolLevel, n: int, seed: int) -> list[Task]:
    """n sound tasks on world seeds >= HELDOUT_SEED (disjoint from synthesis' worlds); the same
    seed gives the same tasks and a shorter list is a prefix of a longer one."""
    rng = random.Random(f"heldout:{seed}")
    tasks: dict[str, Task] = {}
    while len(tasks) < n:
        task = propose_task(level, rng, world_seed=HELDOUT_SEED + rng.randrange(HELDOUT_SEED))
        if screen(task) is None and task.id not in tasks:
            tasks[task.id] = task
    return list(tasks.values())


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: claim success and guess the commonest status."""
    del messages
    return "<answer>Done. The status is pending.</answer>"


def open_world(level: ToolLevel, seed: int, resource_dir: Path) -> World:
    """Worlds are built per episode from each task's world seed; nothing is written to disk."""
    del resource_dir

    def expert(task: Task) -> Script:
        return expert_script(task, error_rate=level.expert_error_rate, seed=seed)

    return World(
        proposer=ToolProposer(level, seed),
        heldout=lambda n, heldout_seed: heldout_tasks(level, n, heldout_seed),
        expert=expert,
        guesser=guess_without_tools,
        load_kag=load_into_kag,
        info={"worlds": ["retail", "travel"], "seed": seed},
        screen=screen,
    )


SPEC: DomainSpec[ToolLevel] = DomainSpec(
    name=DOMAIN,
    description="stateful retail and travel worlds with a written policy and a simulated user",
    level=ToolLevel,
    protocol=protocol("retail"),
    verdicts=verify,
    verifiers=VERIFIERS,
    open_world=open_world,
    process_verifiers=frozenset(RUBRICS),
    rubric_verifiers=frozenset(RUBRICS),
    min_tool_steps=MIN_TOOL_STEPS,
    heldout_size=100,
    tool_steps=ToolLevel.tool_steps,
    turn_tokens=fixed_turn_tokens(65),  # results/tiny-six-seed0-199ecb0/turn-lengths.json
)
