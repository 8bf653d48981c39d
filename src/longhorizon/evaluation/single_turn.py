"""Single-turn benchmarks: render each item's prompt, generate once, score each finished batch.

The shared loop of the adapters that need no episode (IFEval, MolBench). Their items carry
their prompt text (`Prompted`) and the adapter gives a `Score` for a batch; sampling (greedy
for seed 0), batching, progress and the streaming of results to `on_results` (so a killed
run keeps what it finished) live here once. Adapters that ask an LLM judge (HiPhO,
FrontierScience) build their run with `judged`: the judge is opened once per seed and a
batch's items are judged concurrently.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from longhorizon.evaluation.bench import OnResults, Run
from longhorizon.evaluation.generation import (
    completion_meta,
    generate_all,
    response_text,
    user_prompt,
)
from longhorizon.evaluation.judge import Judge, open_judge
from longhorizon.evaluation.options import EvalOptions, sampling_for_seed
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent
from longhorizon.models.types import Completion

__all__ = [
    "JudgedScore",
    "Prompted",
    "Score",
    "Scorer",
    "judged",
    "per_item",
    "run_single_turn",
    "single_turn",
]


class Prompted(Protocol):
    """An item of a single-turn benchmark: the text of its one user message."""

    @property
    def prompt(self) -> str: ...


# (batch items, their response texts, per-response generation metadata) -> one result per item
Score = Callable[
    [list[Any], list[str], list[dict[str, Any]]],
    list[ItemResult] | Awaitable[list[ItemResult]],
]
# (seed, bench directory) -> the Score of that seed's batches
Scorer = Callable[[int, Path], Score]
# (item, response text, seed, generation metadata) -> its result
ItemScore = Callable[[Any, str, int, dict[str, Any]], ItemResult]
# the same with the seed's judge (None: none configured), awaited
JudgedScore = Callable[[Judge | None, Any, str, int, dict[str, Any]], Awaitable[ItemResult]]


def per_item(score_item: ItemScore) -> Scorer:
    """The Scorer of an adapter that scores each response on its own (no file, no state)."""

    def scorer(seed: int, bench_dir: Path) -> Score:
        def score(
            batch: list[Any], texts: list[str], meta: list[dict[str, Any]]
        ) -> list[ItemResult]:
            return [score_item(i, t, seed, m) for i, t, m in zip(batch, texts, meta, strict=True)]

        return score

    return scorer


async def run_single_turn(
    agent: Agent,
    items: Sequence[Prompted],
    seed: int,
    options: EvalOptions,
    *,
    score: Score,
    label: str,
    on_results: OnResults | None = None,
) -> list[ItemResult]:
    """Answer every item once under `seed` (one user message each); results in item order."""
    params = sampling_for_seed(seed, options.tokens(), options.temperature)
    results: list[ItemResult] = []

    async def on_batch(index: list[int], completions: list[Completion]) -> None:
        texts = [response_text(agent, c) for c in completions]
        meta = [completion_meta(c) for c in completions]
        outcome = score([items[i] for i in index], texts, meta)
        scored = await outcome if inspect.isawaitable(outcome) else outcome
        results.extend(scored)
        if on_results is not None:
            on_results(scored)

    await generate_all(
        agent,
        [user_prompt(item.prompt) for item in items],
        params,
        batch_size=options.batch_size,
        on_batch=on_batch,
        show_progress=options.show_progress,
        label=f"{label} seed {seed}",
    )
    return results


def single_turn(label: str, scorer: Scorer) -> Run:
    """An adapter's `run` (the `Bench.run` signature) for a single-turn benchmark."""

    async def run(
        agent: Agent,
        items: Sequence[Prompted],
        seed: int,
        options: EvalOptions,
        *,
        bench_dir: Path,
        on_results: OnResults | None = None,
    ) -> list[ItemResult]:
        score = scorer(seed, bench_dir)
        return await run_single_turn(
            agent, items, seed, options, score=score, label=label, on_results=on_results
        )

    return run


def judged(label: str, score_item: JudgedScore) -> Run:
    """An adapter's `run` whose items may need the LLM judge of `options.judge`."""

    async def run(
        agent: Agent,
        items: Sequence[Prompted],
        seed: int,
        options: EvalOptions,
        *,
        bench_dir: Path,
        on_results: OnResults | None = None,
    ) -> list[ItemResult]:
        async with open_judge(options.judge) as judge:

            async def score(
                batch: list[Any], texts: list[str], meta: list[dict[str, Any]]
            ) -> list[ItemResult]:
                zipped = zip(batch, texts, meta, strict=True)
                judging = (score_item(judge, i, t, seed, m) for i, t, m in zipped)
                return list(await asyncio.gather(*judging))

            return await run_single_turn(
                agent, items, seed, options, score=score, label=label, on_results=on_results
            )

    return run
