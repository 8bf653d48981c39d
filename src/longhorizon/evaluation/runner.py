"""Evaluate a model on benchmarks over seeds: items files, result.json, resumable.

Layout under the output directory, per benchmark B and seed k:
`B/items-seed<k>.jsonl` (one ItemResult per line, appended per batch) and `B/result.json`
(a BenchResult: every metric per seed and pooled, plus what loading found out, such as the
held-out audit, and tokens/s of this run). Items already in an items file are not run
again, so a rerun after a kill continues; result.json is rebuilt from the items files.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from longhorizon.domains import registry
from longhorizon.evaluation import (
    frontierscience,
    hipho,
    ifbench,
    ifeval,
    mlebench,
    molbench,
    molbench_ms1,
)
from longhorizon.evaluation.bench import Bench, Loaded, run_bench
from longhorizon.evaluation.heldout import heldout_bench
from longhorizon.evaluation.horizon import by_hops, truncation
from longhorizon.evaluation.items import append_items, items_path, read_items, read_seeds
from longhorizon.evaluation.metrics import estimate, pooled_estimate
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.types import BenchResult, ItemResult, MetricResult
from longhorizon.harness.agent import Agent, BackendAgent
from longhorizon.serving.backends import open_backend
from longhorizon.serving.summariser import shared_summariser

# Fixed benchmarks; every registered domain adds its `<domain>-heldout` bench (`benches()`).
BENCHES: dict[str, Bench] = {
    b.name: b
    for b in (
        ifeval.BENCH,
        ifbench.BENCH,
        molbench.BENCH,
        molbench_ms1.BENCH,
        hipho.BENCH,
        frontierscience.BENCH,
        mlebench.BENCH,
    )
}
RESULT_FILE = "result.json"


def benches() -> dict[str, Bench]:
    """Every bench by name: the fixed ones, then one held-out bench per registered domain."""
    return {**BENCHES, **{s.bench: heldout_bench(s) for s in registry.specs()}}


def bench_names() -> list[str]:
    return list(benches())


def get_bench(name: str) -> Bench:
    known = benches()
    if name not in known:
        raise KeyError(f"unknown bench {name!r}; known: {', '.join(known)}")
    return known[name]


def summarise(
    bench: Bench,
    model: str,
    by_seed: dict[int, dict[str, ItemResult]],
    info: dict[str, Any] | None = None,
) -> BenchResult:
    """Every metric of `bench` per seed and pooled over items x seeds, the primary one by hop
    count, and the episodes that ran out of budget."""
    metrics = {
        m.name: MetricResult(
            name=m.name,
            description=m.description,
            per_seed={s: estimate(m, list(items.values())) for s, items in by_seed.items()},
            pooled=pooled_estimate(m, by_seed),
        )
        for m in bench.metrics
    }
    return BenchResult(
        bench=bench.name,
        model=model,
        seeds=sorted(by_seed),
        primary=bench.primary,
        metrics=metrics,
        n_items={s: sum(r.scored for r in items.values()) for s, items in by_seed.items()},
        unscored={s: _unscored(items.values()) for s, items in by_seed.items()},
        truncated={s: truncation(items).truncated for s, items in by_seed.items()},
        forced={s: truncation(items).forced for s, items in by_seed.items()},
        by_hops=by_hops(bench.metrics[0], by_seed),
        info=info or {},
    )


def _unscored(items: Iterable[ItemResult]) -> dict[str, int]:
    """How many items have no score, by why (sorted by reason)."""
    return dict(sorted(Counter(r.unscored for r in items if r.unscored is not None).items()))


def _todo(bench: Bench, loaded: Loaded, done: dict[str, ItemResult], judge: bool) -> list[Any]:
    """Items not yet answered; with a judge configured, unscored ones are answered again."""
    return [
        item
        for item in loaded.items
        if (r := done.get(bench.item_id(item))) is None or (judge and not r.scored)
    ]


async def run_seed(
    bench: Bench,
    agent: Agent,
    loaded: Loaded,
    seed: int,
    options: EvalOptions,
    bench_dir: Path,
) -> dict[str, Any]:
    """Answer the items of `loaded` not yet in this seed's items file (and, with a judge, the
    unscored ones again: a judge that was missing or down gets its chance); returns run stats."""
    path = items_path(bench_dir, seed)
    done = read_items(path)
    todo = _todo(bench, loaded, done, options.judge is not None)
    start = time.perf_counter()
    new: list[ItemResult] = []

    def on_results(results: list[ItemResult]) -> None:
        append_items(path, results)
        new.extend(results)

    if todo:
        await run_bench(
            bench, agent, todo, seed, options, bench_dir=bench_dir, on_results=on_results
        )
    wall = time.perf_counter() - start
    tokens = sum(int(r.details.get("completion_tokens", 0)) for r in new)
    return {
        "reused": len(loaded.items) - len(todo),
        "ran": len(new),
        "missing": len(todo) - len(new),
        "completion_tokens": tokens,
        "wall_s": round(wall, 3),
        "tokens_per_s": round(tokens / wall, 2) if new and wall > 0 else None,
    }


async def evaluate_bench(
    agent: Agent,
    model: str,
    bench_name: str,
    seeds: Sequence[int],
    out: Path,
    options: EvalOptions | None = None,
) -> BenchResult:
    """Run one benchmark for every seed (resuming) and write and return its BenchResult."""
    options = options or EvalOptions()
    bench = get_bench(bench_name)
    bench_dir = out / bench.name
    bench_dir.mkdir(parents=True, exist_ok=True)
    loaded = bench.load_items(options, bench_dir)
    runs = {}
    for seed in seeds:
        runs[seed] = await run_seed(bench, agent, loaded, seed, options, bench_dir)
    wanted = {bench.item_id(i) for i in loaded.items}
    stored = read_seeds(bench_dir)
    # Only this run's items and seeds count: an earlier run with a larger --limit or more
    # seeds leaves its items on disk, but they are not part of this evaluation.
    by_seed = {s: {k: v for k, v in stored.get(s, {}).items() if k in wanted} for s in seeds}
    info = {**loaded.info, "options": options.model_dump(mode="json"), "runs": runs}
    result = summarise(bench, model, by_seed, info)
    result.save(bench_dir / RESULT_FILE)
    return result


async def evaluate_agent(
    agent: Agent,
    model: str,
    benches: Sequence[str],
    seeds: int | Sequence[int],
    out: Path,
    options: EvalOptions | None = None,
) -> dict[str, BenchResult]:
    """Every bench for every seed (an int n means seeds 0..n-1) with one agent."""
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    for name in benches:
        get_bench(name)  # fail on a typo before any model time is spent
    options = options or EvalOptions()
    # One summariser for every bench and seed, opened by the first that asks (Ray workers
    # open their own).
    summariser = options.summariser if options.ray is None else None
    async with shared_summariser(summariser):
        return {
            name: await evaluate_bench(agent, model, name, seed_list, out, options)
            for name in benches
        }


async def evaluate_model(
    model: str,
    benches: Sequence[str],
    seeds: int | Sequence[int],
    out: Path,
    options: EvalOptions | None = None,
    *,
    backend: str = "hf",
    base_url: str | None = None,
    tokenizer: str | None = None,
) -> dict[str, BenchResult]:
    """Open `model` on a backend (hf in-process, an OpenAI-compatible server, or vLLM) and
    evaluate it; what `longhorizon eval --model` runs."""
    options = options or EvalOptions()
    async with open_backend(
        model,
        backend,  # type: ignore[arg-type]
        base_url=base_url,
        tokenizer=tokenizer,
        max_concurrency=options.batch_size,
    ) as opened:
        return await evaluate_agent(BackendAgent(opened), model, benches, seeds, out, options)


def load_results(out: Path) -> dict[str, BenchResult]:
    """The BenchResults under an evaluation directory, by bench."""
    return {p.parent.name: BenchResult.load(p) for p in sorted(out.glob(f"*/{RESULT_FILE}"))}
