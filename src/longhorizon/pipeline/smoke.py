"""The foundation job: a model answers arithmetic tasks with a calculator tool, token-exact.

It runs the whole harness (chat template with tools, tool-call parsing, tool execution,
budgets, verification, the trajectory store and its Parquet export) on a real model. The full
recipe (synthesis -> SFT -> teachers -> OPD -> eval) replaces it as the default of
`longhorizon run` once those stages land.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from longhorizon.core import Budgets, Protocol, SamplingParams, Task, Trajectory, TrajectoryStore
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.harness.rollout import RolloutReport
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

SYSTEM = (
    "You solve arithmetic problems. Use the calculator tool for every computation, then give "
    "the final number inside <answer></answer>."
)
PROBLEMS = [
    ("17 * 23", "391"),
    ("(120 - 45) / 3", "25"),
    ("2 ** 10 + 7", "1031"),
    ("9 * 9 * 9", "729"),
]


class SmokeConfig(BaseModel):
    model: str = "smollm2-135m"
    out: Path = Path("runs/default")
    max_turns: int = 3
    max_tokens: int = 96


def builtin_tasks(cfg: SmokeConfig) -> list[Task]:
    protocol = Protocol(
        tools=("calculator",),
        system_prompt=SYSTEM,
        budgets=Budgets(
            max_turns=cfg.max_turns, max_response_tokens=cfg.max_tokens, max_context_tokens=2048
        ),
    )
    return [
        Task(
            id=f"arith-{i}",
            domain="arithmetic",
            instruction=f"What is {q}?",
            answer=a,
            protocol=protocol,
        )
        for i, (q, a) in enumerate(PROBLEMS)
    ]


async def run_smoke(
    agent: BackendAgent, cfg: SmokeConfig
) -> tuple[RolloutReport, list[Trajectory]]:
    """Run the built-in tasks (resuming), export Parquet, return the report and trajectories."""
    config = HarnessConfig(sampling=SamplingParams(temperature=0.0), workdir=cfg.out / "workdirs")
    runner = EpisodeRunner(
        agent, lambda t: build_toolset(t.protocol.tools), config, verify=verify_answer
    )
    store = TrajectoryStore(cfg.out / "trajectories")
    report = await run_rollouts(runner, builtin_tasks(cfg), store, concurrency=len(PROBLEMS))
    store.close()
    store.to_parquet(cfg.out / "trajectories.parquet")
    return report, list(store)
