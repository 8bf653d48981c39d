"""instruction-heldout: instruction-following and long-context tasks synthesis never proposed.

Tasks come from the instruction domain's generator with seeds from the reserved range at
synthesis' level (`--instruction-level`; by default 1-4 instructions and a fifth long-context
tasks), pass the audit against `--train-tasks` (see
`heldout`), and run as episodes (no tools) scored by `verify_task`: the IFEval checkers,
strict, for composed prompts; the right choice for long-context multiple choice. 200 tasks
unless --limit says fewer.
"""

from __future__ import annotations

from pathlib import Path

from longhorizon.core.task import Task
from longhorizon.domains.instruction import verify_task
from longhorizon.evaluation.bench import Bench, Loaded, OnResults
from longhorizon.evaluation.episodes import run_episodes
from longhorizon.evaluation.heldout import audit, instruction_tasks
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent
from longhorizon.tools.base import ToolSet

NAME = "instruction-heldout"
DEFAULT_SIZE = 200
METRICS = (Metric("pass_rate", ((1.0, Ratio()),), "episodes whose every verdict passed"),)


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    size = options.limit or DEFAULT_SIZE
    tasks = instruction_tasks(size, options.heldout_seed, options.instruction_level)
    kept, report = audit(
        tasks, options.train_tasks, rule=options.audit_rule, containment=options.containment
    )
    info = {
        "heldout_seed": options.heldout_seed,
        "level": options.instruction_level.model_dump(),
        "audit": report.summary(),
    }
    return Loaded(kept, info)


def item_id(task: Task) -> str:
    return task.id


async def run(
    agent: Agent,
    items: list[Task],
    seed: int,
    options: EvalOptions,
    *,
    bench_dir: Path,
    on_results: OnResults | None = None,
) -> list[ItemResult]:
    return await run_episodes(
        NAME,
        agent,
        items,
        seed,
        options,
        bench_dir=bench_dir,
        toolsets=lambda t: ToolSet([]),
        verify=lambda task, traj: verify_task(task, traj),
        on_results=on_results,
    )


BENCH = Bench(
    name=NAME,
    metrics=METRICS,
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="held-out instruction-following tasks (reserved seeds), verifier pass",
)
