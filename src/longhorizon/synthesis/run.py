"""Run self-play for one domain: the contamination index, the KAG, the roles, the loop.

The domain arrives as a builder (it needs the open KAG and the renderer): synthesis knows
no domain by name. `longhorizon.domains.synthesize` makes the builder from a `DomainSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from longhorizon.harness.agent import Agent
from longhorizon.kag import KnowledgeActionGraph
from longhorizon.models.render import ChatRenderer
from longhorizon.serving.backends import BackendKind
from longhorizon.synthesis.attempt import AttemptRunner, GuessTries
from longhorizon.synthesis.decontam import benchmark_index
from longhorizon.synthesis.selfplay import SelfPlay, SynthConfig, SynthReport
from longhorizon.synthesis.types import Domain

__all__ = ["SCRIPTED_TOKENIZER", "DomainBuilder", "run_synthesis"]

# (the open KAG, the token renderer, the LLM solver or None for scripted roles) -> the Domain
DomainBuilder = Callable[[KnowledgeActionGraph, ChatRenderer, Agent | None], Domain]
console = Console()
SCRIPTED_TOKENIZER = "tiny-llama"  # the token records of scripted experts, unless told otherwise


async def run_synthesis(
    build: DomainBuilder,
    n: int,
    out: Path,
    *,
    kag: str | Path,
    model: str | None = None,
    backend: BackendKind = "hf",
    base_url: str | None = None,
    tokenizer: str | None = None,
    seed: int = 0,
    concurrency: int = 8,
    eval_sets: Sequence[Path] = (),
    runner: AttemptRunner | None = None,
    guess_tries: int = 1,
) -> SynthReport:
    """Scripted experts solve unless `model` names an LLM (then it is solver and guesser),
    served by `backend` (hf in process, openai at `base_url`, or a vllm server started for the
    run); `kag` is the KAG's DSN or SQLite path (the domain spec says where, by default);
    `runner` runs the episodes elsewhere (Ray workers; scripted experts only); a model guesser
    takes `guess_tries` no-tool tries (a scripted one is deterministic, so it takes one)."""
    from transformers import AutoTokenizer  # heavy: loaded only when a run starts

    from longhorizon.harness import BackendAgent
    from longhorizon.models.registry import resolve_model
    from longhorizon.serving.backends import open_backend

    with console.status("indexing evaluation sets for the contamination audit"):
        contamination = benchmark_index(eval_sets)  # None: audit off (LONGHORIZON_BENCHMARKS=none)
    if guess_tries > 1 and model is None:
        raise ValueError(
            f"{guess_tries} guess tries need a model guesser (--model): the scripted guesser "
            "is deterministic, so every try would repeat the first"
        )
    guessing = GuessTries(tries=guess_tries)
    config = SynthConfig(n=n, out=out, seed=seed, concurrency=concurrency, guessing=guessing)
    with KnowledgeActionGraph(kag) as graph:
        if model is None:
            names = resolve_model(tokenizer or SCRIPTED_TOKENIZER)
            renderer = ChatRenderer(AutoTokenizer.from_pretrained(names))
            domain = build(graph, renderer, None)
            return await SelfPlay(domain, config, graph, contamination, runner).run()
        if runner is not None:
            raise ValueError("episodes on other workers run the scripted experts only, not a model")
        served = open_backend(
            model,
            backend,
            base_url=base_url,
            # an OpenAI server's model is a served name: the token records need its tokenizer
            tokenizer=resolve_model(tokenizer or model) if backend == "openai" else tokenizer,
            max_concurrency=concurrency,
        )
        async with served as client:
            agent = BackendAgent(client)
            domain = build(graph, agent.renderer, agent)
            return await SelfPlay(domain, config, graph, contamination).run()
