"""Episodes per second: `rollout --ray` with 2 workers against the single-process path.

The same 64 episodes (`tiny-tool-caller`, a 7M-parameter seeded model: a calculator call, then
the answer; two model calls an episode), in the same run, on a local Ray cluster this script
starts on 127.0.0.1 with 2 CPUs. Each path runs its episodes into a fresh store; the model
load is outside the timed part for both (the single process opens its runner first; the Ray
workers each run one warm-up episode first). Each path runs `--repeats` times, interleaved,
and the median is reported: the 2 cores here are shared with other work.

    python bench/ray_rollouts.py [--episodes 64] [--repeats 3] [--per-worker 4]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path

import ray
from rich.console import Console
from rich.table import Table

from _common import write_result
from longhorizon.core import Budgets, Protocol, Task, TrajectoryStore
from longhorizon.core.logs import send_third_party_to
from longhorizon.harness import HarnessConfig, RolloutReport, run_rollouts
from longhorizon.models.tool_caller import QUESTION
from longhorizon.scaleout import RolloutSpec, open_runner
from longhorizon.scaleout.ray_cluster import connect
from longhorizon.scaleout.ray_rollouts import run_rollouts_ray, start_workers

WORKERS = 2


def tasks(n: int, prefix: str) -> list[Task]:
    protocol = Protocol(tools=("calculator",), budgets=Budgets(max_turns=4, max_response_tokens=48))
    return [
        Task(
            id=f"{prefix}-{i}",
            domain="arithmetic",
            instruction=QUESTION,
            answer="5",
            protocol=protocol,
        )
        for i in range(n)
    ]


def check(report: RolloutReport, n: int) -> float:
    if report.finished != n or report.passed != n:
        raise SystemExit(
            f"expected {n} passing episodes, got {report.finished} ({report.passed} passed)"
        )
    return n / report.wall_s


async def single_process(spec: RolloutSpec, episodes: list[Task], work: Path) -> float:
    async with open_runner(spec) as runner:  # the model loads here, before the clock starts
        store = TrajectoryStore(work / "single")
        report = await run_rollouts(
            runner, episodes, store, concurrency=spec.harness.model_concurrency, show_progress=False
        )
        store.close()
    return check(report, len(episodes))


def on_ray(workers: list, episodes: list[Task], work: Path, per_worker: int) -> float:
    store = TrajectoryStore(work / "ray")
    report = run_rollouts_ray(workers, episodes, store, per_worker=per_worker, show_progress=False)
    store.close()
    return check(report, len(episodes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-worker", type=int, default=4, help="episodes in flight per worker")
    args = parser.parse_args()
    send_third_party_to(None)  # no transformers loading bars between the rows
    connect(None, num_cpus=WORKERS)
    work = Path(tempfile.mkdtemp(prefix="lh-ray-bench-"))
    # One process gets as many episodes in flight as the two workers together.
    single_spec = RolloutSpec(
        model="tiny-tool-caller",
        harness=HarnessConfig(workdir=work / "w1", model_concurrency=WORKERS * args.per_worker),
    )
    ray_spec = RolloutSpec(
        model="tiny-tool-caller",
        harness=HarnessConfig(workdir=work / "w2", model_concurrency=args.per_worker),
    )
    workers = start_workers(ray_spec, WORKERS, args.per_worker)
    on_ray(workers, tasks(WORKERS, "warmup"), work / "warmup", args.per_worker)  # loads models
    rates: dict[str, list[float]] = {"single process": [], f"ray, {WORKERS} workers": []}
    try:
        for r in range(args.repeats):
            episodes = tasks(args.episodes, f"add-r{r}")
            rates["single process"].append(
                asyncio.run(single_process(single_spec, episodes, work / f"r{r}"))
            )
            rates[f"ray, {WORKERS} workers"].append(
                on_ray(workers, episodes, work / f"r{r}", args.per_worker)
            )
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    report(rates, args)


def report(rates: dict[str, list[float]], args: argparse.Namespace) -> None:
    median = {name: statistics.median(values) for name, values in rates.items()}
    base = median["single process"]
    table = Table(title=f"{args.episodes} episodes of tiny-tool-caller, median of {args.repeats}")
    for column in ("path", "episodes/s (median)", "runs", "vs single process"):
        table.add_column(column)
    for name, values in rates.items():
        runs = ", ".join(f"{v:.1f}" for v in values)
        table.add_row(name, f"{median[name]:.2f}", runs, f"{median[name] / base:.2f}x")
    Console().print(table)
    ray_name = f"ray, {WORKERS} workers"
    write_result(
        "ray_rollouts",
        {
            "model": "tiny-tool-caller",
            "episodes": args.episodes,
            "repeats": args.repeats,
            "workers": WORKERS,
            "per_worker": args.per_worker,
            "peer": "single process (the embedded asyncio path), same episodes, same run",
            "episodes_per_s": rates,
            "median_episodes_per_s": median,
            "ratio_ray_vs_single": median[ray_name] / base,
        },
    )


if __name__ == "__main__":
    main()
