"""Rollout throughput of the harness against a real vLLM server, at concurrency 1, 8 and 64.

64 episodes per level through the openai backend and a vLLM CPU server this script starts,
for two models:

* `tiny-tool-caller` (7M parameters): a tool call, a calculator result, an answer; two model
  calls per episode. The stress case: the server answers a call in a few milliseconds, so
  the harness's own cost is as visible as it can be.
* `smollm2-135m` (SmolLM2-135M-Instruct, the smallest real model here): the same task and
  tools; it answers directly, one model call per episode (its reply is the final answer).

Speed-ups are relative to concurrency 1. The harness's own overhead is the CPU time of this
process (rendering, encoding, parsing, tools, bookkeeping, HTTP client) as a share of wall
time: the model runs in the server's processes, so everything counted here is the harness's
cost. Each level first runs one warm-up wave on its backend (connections open, caches warm,
as in a long rollout), then times the episodes. Each level runs `--repeats` times, interleaved,
and reports the median: the vLLM CPU server's speed varies 2-4x between identical runs on 2
shared cores. The JSON keeps every run.

    python bench/rollout_concurrency.py [--episodes 64] [--repeats 3] [--models a,b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from _common import write_result
from longhorizon.core import Budgets, Protocol, Task, TrajectoryStore
from longhorizon.core.task import Finalisation
from longhorizon.core.tokens import call_prompt
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.registry import resolve_model
from longhorizon.models.tool_caller import QUESTION
from longhorizon.serving.vllm import VLLMServer
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

LEVELS = (1, 8, 64)
MODELS = ("tiny-tool-caller", "smollm2-135m")
# The tiny tool caller ends with <answer>5</answer>; SmolLM2 answers in plain text.
FINALISATION = {"smollm2-135m": Finalisation(kind="last_message")}


def tasks(n: int, model: str, prefix: str = "add") -> list[Task]:
    protocol = Protocol(
        tools=("calculator",),
        budgets=Budgets(max_turns=4, max_response_tokens=48),
        finalisation=FINALISATION.get(model, Finalisation()),
    )
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


async def one_level(
    base_url: str, model: str, model_dir: str, n: int, concurrency: int
) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="lh-bench-"))
    try:
        async with OpenAIBackend(
            base_url, model=model, tokenizer=model_dir, max_concurrency=concurrency
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
            warm = TrajectoryStore(work / "warm")
            await run_rollouts(
                runner,
                tasks(concurrency, model, "warm"),
                warm,
                concurrency=concurrency,
                show_progress=False,
            )
            warm.close()
            store = TrajectoryStore(work / "s")
            cpu0, wall0 = time.process_time(), time.perf_counter()
            report = await run_rollouts(
                runner, tasks(n, model), store, concurrency=concurrency, show_progress=False
            )
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            requests = [
                (call_prompt(t.calls, i).input_ids, len(call.completion_ids))
                for t in store
                for i, call in enumerate(t.calls)
            ]
            store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    bare_cpu = await bare_client(base_url, model, requests, concurrency)
    return {
        "episodes": report.finished,
        "passed": report.passed,
        "model_calls": report.model_calls,
        "wall_s": wall,
        "episodes_per_s": report.finished / wall,
        "completion_tokens_per_s": report.tokens / wall,
        "harness_cpu_s": cpu,
        "harness_overhead_share": cpu / wall,
        "bare_client_cpu_s": bare_cpu,
        "harness_vs_bare_client": cpu / bare_cpu,
    }


async def bare_client(
    base_url: str, model: str, requests: list[tuple[list[int], int]], concurrency: int
) -> float:
    """The peer: CPU seconds for the same model calls from a bare aiohttp session.

    Same prompts, same number of generated tokens, same concurrency; it builds each JSON body
    and parses each answer, and does nothing else (no rendering, tools, records): the floor
    of any Python client talking to this server.
    """
    url = f"{base_url}/completions"  # base_url is the server's .../v1
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(prompt: list[int], max_tokens: int) -> None:
            body = {"model": model, "prompt": prompt, "max_tokens": max(1, max_tokens)}
            body |= {"temperature": 0.0, "return_token_ids": True, "logprobs": 0}
            async with semaphore, session.post(url, data=json.dumps(body).encode()) as answer:
                json.loads(await answer.read())

        await asyncio.gather(*(post(p, n) for p, n in requests[:concurrency]))  # warm-up
        cpu0 = time.process_time()
        await asyncio.gather(*(post(p, n) for p, n in requests))
        return time.process_time() - cpu0


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per-key medians of a level's repeats, plus the range of its overhead share."""
    out = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    shares = [r["harness_overhead_share"] for r in runs]
    return {**out, "overhead_min": min(shares), "overhead_max": max(shares)}


def bench_model(model: str, episodes: int, repeats: int) -> dict:
    """Every level of one model, `repeats` times, interleaved; medians and all runs."""
    model_dir = resolve_model(model)
    runs: dict[str, list[dict[str, float]]] = {f"c{level}": [] for level in LEVELS}
    with VLLMServer(model_dir, served_model_name=model, max_model_len=1024) as server:
        asyncio.run(one_level(server.base_url, model, model_dir, 4, 4))  # server warm-up
        for _ in range(repeats):  # interleaved, so a slow spell hits every level
            for level in LEVELS:
                runs[f"c{level}"].append(
                    asyncio.run(one_level(server.base_url, model, model_dir, episodes, level))
                )
    levels = {name: median_run(level_runs) for name, level_runs in runs.items()}
    base = levels["c1"]["episodes_per_s"]
    for row in levels.values():
        row["speedup_vs_c1"] = row["episodes_per_s"] / base
    return {"levels": levels, "runs": runs}


# (row label, how a level's medians show): rows are metrics and columns levels, to fit 80 columns.
ROWS = (
    ("episodes/s", lambda r: f"{r['episodes_per_s']:.2f}"),
    ("speed-up vs concurrency 1", lambda r: f"{r['speedup_vs_c1']:.2f}x"),
    ("wall s", lambda r: f"{r['wall_s']:.1f}"),
    ("passed", lambda r: f"{r['passed']:.0f}/{r['episodes']:.0f}"),
    ("model calls", lambda r: f"{r['model_calls']:.0f}"),
    ("harness overhead (goal < 5%)", lambda r: f"{r['harness_overhead_share']:.1%}"),
    ("overhead range", lambda r: f"{r['overhead_min']:.1%}-{r['overhead_max']:.1%}"),
    ("harness CPU ms/episode", lambda r: f"{1000 * r['harness_cpu_s'] / r['episodes']:.2f}"),
    (
        "bare client CPU ms/episode",
        lambda r: f"{1000 * r['bare_client_cpu_s'] / r['episodes']:.2f}",
    ),
    ("harness / bare client", lambda r: f"{r['harness_vs_bare_client']:.2f}x"),
)


def table(model: str, result: dict, episodes: int, repeats: int) -> Table:
    title = f"{model}: {episodes} episodes per level on vLLM (CPU), median of {repeats}"
    out = Table(title=title)
    out.add_column("concurrency", no_wrap=True)
    for level in LEVELS:
        out.add_column(str(level), justify="right", no_wrap=True)
    for label, show in ROWS:
        out.add_row(label, *[show(result["levels"][f"c{level}"]) for level in LEVELS])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = {model: bench_model(model, args.episodes, args.repeats) for model in models}
    for model, result in results.items():
        Console().print(table(model, result, args.episodes, args.repeats))
    payload = {"episodes": args.episodes, "repeats": args.repeats, "models": results}
    write_result("rollout_concurrency", payload)


if __name__ == "__main__":
    main()
