"""Self-play synthesis of one domain from its spec: what `longhorizon synth` and the pipeline's
synth stage call. The spec's world is built inside the run (it needs the KAG and renderer)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core import SamplingParams
from longhorizon.domains.spec import DomainSpec
from longhorizon.harness.agent import Agent
from longhorizon.kag import KnowledgeActionGraph
from longhorizon.models.render import ChatRenderer
from longhorizon.serving.backends import BackendKind
from longhorizon.serving.summariser import SummariserConfig, summariser_resources
from longhorizon.synthesis.attempt import AttemptRunner
from longhorizon.synthesis.run import DomainBuilder, run_synthesis
from longhorizon.synthesis.selfplay import SynthReport
from longhorizon.synthesis.types import Domain

__all__ = ["SynthWorkerSpec", "domain_builder", "synthesize"]


class SynthWorkerSpec(BaseModel):
    """What a `synth --ray` worker builds its domain from: the driver's build inputs."""

    model_config = ConfigDict(frozen=True)

    domain: str
    level: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0
    out: Path
    tokenizer: str | None = Field(default=None, description="token records (scripted experts)")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0))


def domain_builder(
    spec: DomainSpec[Any],
    level: BaseModel,
    seed: int,
    out: Path,
    resources: Mapping[str, Any] | None = None,
) -> DomainBuilder:
    """Builds the world (resources under `out`, evidence into the KAG) and synthesis' Domain;
    `resources` join the world's (the visit summariser)."""

    def build(kag: KnowledgeActionGraph, renderer: ChatRenderer, model: Agent | None) -> Domain:
        world = spec.open_world(level, seed, out)
        if world.load_kag is not None:
            world.load_kag(kag)
        domain = spec.synth_domain(world, renderer, model)
        domain.resources.update(resources or {})
        return domain

    return build


async def synthesize(
    spec: DomainSpec[Any],
    n: int,
    out: Path,
    *,
    level: BaseModel | dict[str, Any] | None = None,
    model: str | None = None,
    backend: BackendKind = "hf",
    base_url: str | None = None,
    tokenizer: str | None = None,
    seed: int = 0,
    concurrency: int = 8,
    kag_dsn: str | None = None,
    eval_sets: Sequence[Path] = (),
    runner: AttemptRunner | None = None,
    guess_tries: int = 1,
    summariser: SummariserConfig | None = None,
) -> SynthReport:
    """N accepted tasks of `spec`'s domain at `level` (its default when None) into `out`;
    `model` on `backend` solves and guesses (`guess_tries` no-tool tries; see
    `run_synthesis`), else the scripted expert; `runner` (e.g. `synth_ray.RayAttempts`) runs
    the episodes on other workers; `summariser` answers visit's goals (in process only)."""
    if summariser is not None and runner is not None:
        raise ValueError("a summariser runs in this process: it cannot serve other workers")
    async with summariser_resources(summariser) as extra:
        build = domain_builder(spec, spec.parse_level(level), seed, out, extra)
        return await run_synthesis(
            build,
            n,
            out,
            kag=kag_dsn or spec.kag_path(out),
            model=model,
            backend=backend,
            base_url=base_url,
            tokenizer=tokenizer,
            seed=seed,
            concurrency=concurrency,
            eval_sets=eval_sets,
            runner=runner,
            guess_tries=guess_tries,
        )
