"""Run self-play for one built-in domain: the contamination index, the KAG, the roles, the loop.

`longhorizon synth` and the pipeline's synth stage both call `run_synthesis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.harness.agent import Agent
from longhorizon.kag import KnowledgeActionGraph
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.decontam import benchmark_index
from longhorizon.synthesis.selfplay import SelfPlay, SynthConfig, SynthReport
from longhorizon.synthesis.types import Domain

DOMAINS = ("search", "instruction")
console = Console()


def build_domain(
    name: str,
    out: Path,
    kag: KnowledgeActionGraph,
    renderer: ChatRenderer,
    *,
    entities: int,
    seed: int,
    agent: Agent | None,
    instruction_level: InstructionLevel | None = None,
) -> Domain:
    if name == "search":
        from longhorizon.synthesis.search import search_domain

        return search_domain(out, kag, renderer, n_entities=entities, seed=seed, model=agent)
    if name == "instruction":
        from longhorizon.synthesis.instruction import instruction_domain

        return instruction_domain(renderer, seed=seed, model=agent, level=instruction_level)
    raise ValueError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")


async def run_synthesis(
    domain: str,
    n: int,
    out: Path,
    *,
    model: str | None = None,
    tokenizer: str = "tiny-llama",
    seed: int = 0,
    concurrency: int = 8,
    entities: int = 3000,
    instruction_level: InstructionLevel | None = None,
    kag_dsn: str | None = None,
    eval_sets: Sequence[Path] = (),
) -> SynthReport:
    """Scripted experts solve unless `model` names an LLM (then it is solver and guesser)."""
    from transformers import AutoTokenizer

    from longhorizon.harness import BackendAgent
    from longhorizon.models.registry import resolve_model
    from longhorizon.serving.backends import open_backend

    with console.status("indexing evaluation sets for the contamination audit"):
        contamination = benchmark_index(eval_sets)  # None: audit off (LONGHORIZON_BENCHMARKS=none)
    config = SynthConfig(n=n, out=out, seed=seed, concurrency=concurrency)
    with KnowledgeActionGraph(kag_dsn or out / "kag.db") as kag:
        if model is None:
            renderer = ChatRenderer(AutoTokenizer.from_pretrained(resolve_model(tokenizer)))
            built = build_domain(
                domain,
                out,
                kag,
                renderer,
                entities=entities,
                seed=seed,
                agent=None,
                instruction_level=instruction_level,
            )
            return await SelfPlay(built, config, kag, contamination).run()
        async with open_backend(model, "hf", max_concurrency=concurrency) as backend:
            agent = BackendAgent(backend)
            built = build_domain(
                domain,
                out,
                kag,
                agent.renderer,
                entities=entities,
                seed=seed,
                agent=agent,
                instruction_level=instruction_level,
            )
            return await SelfPlay(built, config, kag, contamination).run()
