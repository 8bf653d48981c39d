"""What a benchmark adapter provides: its items, how to answer them, and its metrics.

Each fixed adapter module (`ifeval`, `molbench`) exports `load_items(options, bench_dir)`,
`item_id(item)`, an async `run(agent, items, seed, options, bench_dir=..., on_results=...)`
returning `ItemResult`s, and `BENCH`, a `Bench` that bundles them with the metrics (the first
one is the headline). Every domain's held-out bench comes from `heldout.heldout_bench(spec)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longhorizon.evaluation.metrics import Metric
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent

OnResults = Callable[[list[ItemResult]], None]


@dataclass
class Loaded:
    """A benchmark's items (in a fixed order) and what loading them found out (an audit)."""

    items: list[Any]
    info: dict[str, Any] = field(default_factory=dict)


Run = Callable[..., Awaitable[list[ItemResult]]]


@dataclass(frozen=True)
class Bench:
    name: str
    metrics: tuple[Metric, ...]
    load_items: Callable[[EvalOptions, Path], Loaded]
    item_id: Callable[[Any], str]
    run: Run
    description: str = ""

    @property
    def primary(self) -> str:
        return self.metrics[0].name


def limited(items: Sequence[Any], limit: int | None) -> list[Any]:
    return list(items[:limit] if limit else items)


async def run_bench(
    bench: Bench,
    agent: Agent,
    items: list[Any],
    seed: int,
    options: EvalOptions,
    *,
    bench_dir: Path,
    on_results: OnResults,
) -> list[ItemResult]:
    """Call an adapter's `run` with the keyword arguments every adapter takes."""
    return await bench.run(agent, items, seed, options, bench_dir=bench_dir, on_results=on_results)
