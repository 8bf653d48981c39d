"""Rollout throughput of the harness against a real vLLM server, at concurrency 1, 8 and 64.

64 episodes of the built-in `tiny-tool-caller` (a tool call, a tool result, an answer; two
model calls each), through the openai backend and a vLLM CPU server this script starts.
Speed-ups are relative to concurrency 1. The harness's own overhead is the CPU time of this
process (rendering, parsing, tools, bookkeeping, HTTP client) as a share of wall time: the
model runs in the server's processes, so everything counted here is the harness's cost.
Each level runs `--repeats` times and reports the median (the vLLM CPU server's speed varies
by 2-4x between identical runs on 2 shared cores, which moves the share as much as the
harness does); the JSON keeps every run.

    python bench/rollout_concurrency.py [--episodes 64] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from longhorizon.core import Budgets, Protocol, Task, TrajectoryStore
from longhorizon.core.files import write_text_atomic
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.registry import resolve_model
from longhorizon.models.tool_caller import QUESTION
from longhorizon.serving.vllm import VLLMServer
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

RESULT = Path(__file__).parent / "results" / "rollout_concurrency.json"
LEVELS = (1, 8, 64)


def tasks(n: int) -> list[Task]:
    protocol = Protocol(tools=("calculator",), budgets=Budgets(max_turns=4, max_response_tokens=48))
    return [
        Task(
            id=f"add-{i}", domain="arithmetic", instruction=QUESTION, answer="5", protocol=protocol
        )
        for i in range(n)
    ]


async def one_level(base_url: str, model_dir: str, n: int, concurrency: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    try:
        async with OpenAIBackend(
            base_url, model="policy", tokenizer=model_dir, max_concurrency=concurrency
        ) as backend:
            config = HarnessConfig(
                workdir=work / "w", model_concurrency=concurrency, tool_concurrency=concurrency
            )
            runner = EpisodeRunner(
                BackendAgent(backend),
                lambda t: build_toolset(t.protocol.tools),
                config,
                verify=verify_answer,
            )
            store = TrajectoryStore(work / "s")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = await run_rollouts(
                runner, tasks(n), store, concurrency=concurrency, show_progress=False
            )
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "episodes": report.finished,
        "passed": report.passed,
        "wall_s": wall,
        "episodes_per_s": report.finished / wall,
        "completion_tokens_per_s": report.tokens / wall,
        "harness_cpu_s": cpu,
        "harness_overhead_share": cpu / wall,
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-key medians of a level's repeats, plus the range of its overhead share."""
    out = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    shares = [r["harness_overhead_share"] for r in runs]
    return {**out, "overhead_min": min(shares), "overhead_max": max(shares)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model_dir = resolve_model("tiny-tool-caller")
    runs: dict[str, list[dict[str, float]]] = {f"c{level}": [] for level in LEVELS}
    with VLLMServer(model_dir, served_model_name="policy", max_model_len=1024) as server:
        asyncio.run(one_level(server.base_url, model_dir, 4, 4))  # warm-up
        for _ in range(args.repeats):  # interleaved, so a slow spell hits every level
            for level in LEVELS:
                runs[f"c{level}"].append(
                    asyncio.run(one_level(server.base_url, model_dir, args.episodes, level))
                )
    results = {name: median_run(level_runs) for name, level_runs in runs.items()}
    base = results["c1"]["episodes_per_s"]
    for row in results.values():
        row["speedup_vs_c1"] = row["episodes_per_s"] / base

    table = Table(
        title=f"{args.episodes} episodes, tiny-tool-caller on vLLM (CPU), median of {args.repeats}"
    )
    for column in (
        "concurrency",
        "episodes/s",
        "speed-up vs 1",
        "wall s",
        "passed",
        "harness overhead (goal < 5%)",
        "overhead range",
        "harness CPU ms/episode",
    ):
        table.add_column(column, justify="right")
    for level in LEVELS:
        r = results[f"c{level}"]
        table.add_row(
            str(level),
            f"{r['episodes_per_s']:.2f}",
            f"{r['speedup_vs_c1']:.2f}x",
            f"{r['wall_s']:.1f}",
            f"{r['passed']:.0f}/{r['episodes']:.0f}",
            f"{r['harness_overhead_share']:.1%}",
            f"{r['overhead_min']:.1%}-{r['overhead_max']:.1%}",
            f"{1000 * r['harness_cpu_s'] / r['episodes']:.1f}",
        )
    Console(width=140).print(table)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "episodes": args.episodes,
        "model": "tiny-tool-caller",
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "levels": results,
        "runs": runs,
    }
    write_text_atomic(RESULT, json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
