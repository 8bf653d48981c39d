"""run_single_turn: the one loop of the single-turn adapters (prompt, generate once, score)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import AutoTokenizer

from longhorizon.core import Message
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import Score, run_single_turn, single_turn
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness import ScriptedAgent
from longhorizon.models.render import ChatRenderer


@dataclass(frozen=True)
class Echo:
    id: str
    prompt: str


def test_batches_are_scored_in_order_and_streamed(tiny_llama_path: str) -> None:
    seen: list[list[Message]] = []

    def script(messages: list[Message]) -> str:
        seen.append(messages)
        return f"re: {messages[-1].content}"

    agent = ScriptedAgent(ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path)), script)
    items = [Echo(f"q{i}", f"question {i}") for i in range(5)]
    batches: list[list[str]] = []

    def score(batch: list[Echo], texts: list[str], meta: list[dict[str, Any]]) -> list[ItemResult]:
        return [
            ItemResult(
                bench="echo",
                item_id=item.id,
                seed=3,
                score=float(text == f"re: {item.prompt}"),
                prediction=text,
                details=m,
            )
            for item, text, m in zip(batch, texts, meta, strict=True)
        ]

    options = EvalOptions(batch_size=2, show_progress=False)
    results = asyncio.run(
        run_single_turn(
            agent,
            items,
            3,
            options,
            score=score,
            label="echo",
            on_results=lambda r: batches.append([x.item_id for x in r]),
        )
    )
    assert batches == [["q0", "q1"], ["q2", "q3"], ["q4"]]
    assert [r.item_id for r in results] == ["q0", "q1", "q2", "q3", "q4"]
    assert [r.score for r in results] == [1.0] * 5  # the end-of-turn token is not in the text
    assert [m[-1].content for m in seen] == [i.prompt for i in items]
    assert all(len(m) == 1 and m[0].role == "user" for m in seen)
    assert all(r.details["finish_reason"] == "stop" for r in results)
    assert all(r.details["completion_tokens"] > 0 for r in results)


def test_single_turn_builds_an_adapter_run_with_a_per_seed_scorer(
    tiny_llama_path: str, tmp_path: Path
) -> None:
    agent = ScriptedAgent(
        ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path)), lambda m: "yes"
    )
    made: list[tuple[int, Path]] = []

    def scorer(seed: int, bench_dir: Path) -> Score:
        made.append((seed, bench_dir))
        return lambda batch, texts, meta: [
            ItemResult(bench="b", item_id=i.id, seed=seed, score=float(t == "yes"))
            for i, t in zip(batch, texts, strict=True)
        ]

    run = single_turn("b", scorer)
    options = EvalOptions(batch_size=4, show_progress=False)
    items = [Echo("a", "x"), Echo("b", "y")]
    results = asyncio.run(run(agent, items, 7, options, bench_dir=tmp_path))
    assert made == [(7, tmp_path)]  # one scorer per seed, not per batch
    assert [(r.item_id, r.seed, r.score) for r in results] == [("a", 7, 1.0), ("b", 7, 1.0)]
