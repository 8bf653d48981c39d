"""What a rollout worker needs to build its own episode runner: a plain, picklable spec.

The single-process path and every Ray worker open their runner from the same `RolloutSpec`
with `open_runner`, so an episode runs the same code wherever it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig
from longhorizon.harness.episode import Verify
from longhorizon.serving.backends import BackendKind, open_backend
from longhorizon.serving.summariser import SummariserConfig, summariser_resources
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

__all__ = ["EpisodeRules", "RolloutSpec", "RulesFor", "open_runner"]


class RolloutSpec(BaseModel):
    """The policy, its servers and the harness settings of one rollout run."""

    model_config = ConfigDict(frozen=True)

    model: str = Field(description="short name, checkpoint dir, or served model name")
    backend: BackendKind = "hf"
    base_urls: tuple[str, ...] = Field(
        default=(), description="OpenAI-compatible servers (openai backend); several are routed"
    )
    tokenizer: str | None = None
    corpus: tuple[Path, ...] = ()
    harness: HarnessConfig = Field(default_factory=HarnessConfig)
    user_model: str | None = Field(
        default=None, description="model that plays the user behind ask_user (None: scripted)"
    )
    user_base_url: str | None = Field(
        default=None, description="OpenAI-compatible server of user_model (None: in process)"
    )
    summariser: SummariserConfig | None = Field(
        default=None, description="the model visit asks to answer its goal (each worker's own)"
    )


@dataclass(frozen=True)
class EpisodeRules:
    """What a domain adds to a runner: its verifier and the resources its tools read (by
    default: exact match of the answer, and the corpus of `RolloutSpec.corpus` if any)."""

    verify: Verify = verify_answer
    resources: Mapping[str, Any] = field(default_factory=dict)


# Builds a worker's rules in the worker, given a folder of its own for what it writes.
RulesFor = Callable[[Path], EpisodeRules]


def _resources(corpus: tuple[Path, ...]) -> dict[str, Any]:
    if not corpus:
        return {}
    from longhorizon.tools.corpus import CorpusIndex  # heavy (bm25s): only when a corpus is given

    return {"corpus_index": CorpusIndex.open(list(corpus))}


@asynccontextmanager
async def open_runner(
    spec: RolloutSpec, rules: EpisodeRules | None = None
) -> AsyncIterator[EpisodeRunner]:
    """The backend opened in this event loop and an EpisodeRunner over it (verifying and
    reading resources as `rules` say); closed on exit."""
    rules = rules or EpisodeRules()
    async with contextlib.AsyncExitStack() as stack:
        backend = await stack.enter_async_context(
            open_backend(
                spec.model,
                spec.backend,
                base_url=list(spec.base_urls) or None,
                tokenizer=spec.tokenizer,
                max_concurrency=spec.harness.model_concurrency,
            )
        )
        resources = {**_resources(spec.corpus), **rules.resources}
        if spec.user_model is not None:  # the LLM persona behind ask_user
            kind: BackendKind = "openai" if spec.user_base_url else "hf"
            user = open_backend(spec.user_model, kind, base_url=spec.user_base_url)
            resources["user_model"] = await stack.enter_async_context(user)
        resources.update(await stack.enter_async_context(summariser_resources(spec.summariser)))
        yield EpisodeRunner(
            BackendAgent(backend),
            lambda task: build_toolset(task.protocol.tools),
            spec.harness,
            verify=rules.verify,
            resources=resources,
        )
