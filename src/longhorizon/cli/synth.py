"""`longhorizon synth`: self-play task synthesis for a domain, with an acceptance report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast, get_args

import typer
from pydantic import BaseModel
from rich.console import Console

from longhorizon.cli.rollout import RAY
from longhorizon.cli.summariser import (
    SUMMARISER,
    SUMMARISER_BACKEND,
    SUMMARISER_URL,
    cli_summariser,
)
from longhorizon.domains import LevelError, registry, synthesize
from longhorizon.domains.spec import DomainSpec
from longhorizon.domains.synth import SynthWorkerSpec
from longhorizon.serving.backends import BackendKind
from longhorizon.synthesis import print_report
from longhorizon.synthesis.attempt import AttemptRunner
from longhorizon.tools.corpus import CorpusError

console = Console()


def synth(
    domain: str = typer.Option(
        ...,
        help="a registered domain: search, instruction, molecules, or a plug-in "
        "(LONGHORIZON_DOMAINS)",
    ),
    n: int = typer.Option(200, min=1, help="accepted tasks wanted"),
    out: Path = typer.Option(..., help="output dir: tasks/, trajectories/, kag.db, report"),
    model: str | None = typer.Option(
        None,
        help="LLM for proposer-free roles (solver, no-tool "
        "attempt); default: the domain's scripted expert",
    ),
    solver: str = typer.Option(
        "hf", help="how --model runs: hf (in process), vllm (starts a server), openai (--base-url)"
    ),
    base_url: str | None = typer.Option(
        None, help="server of --solver openai, e.g. http://h:8000/v1"
    ),
    tokenizer: str | None = typer.Option(
        None, help="tokenizer of the token records (default: the model's; tiny-llama if scripted)"
    ),
    seed: int = typer.Option(0),
    concurrency: int = typer.Option(8, min=1),
    level: str | None = typer.Option(
        None,
        help='the domain\'s level as JSON, e.g. search: {"entities": 300}, or a corpus of '
        'your own: {"corpus": "wiki.jsonl", "hops": [1, 3]}; instruction: '
        '{"max_instructions": 1, "max_response_chars": 600}',
    ),
    kag: str | None = typer.Option(None, help="KAG DSN (default: OUT/kag.db)"),
    eval_set: list[Path] = typer.Option([], help="extra evaluation files for the audit"),
    ray_address: str | None = RAY,
    workers: int = typer.Option(2, min=1, help="Ray workers (with --ray)"),
    guess_tries: int = typer.Option(
        1,
        min=1,
        help="no-tool tries of the --model guesser before a solved task counts as needing its "
        "tools (tries after the first sample at T=0.7; the first right answer rejects it)",
    ),
    summariser: str | None = SUMMARISER,
    summariser_backend: str | None = SUMMARISER_BACKEND,
    summariser_url: str | None = SUMMARISER_URL,
) -> None:
    """Propose, solve, verify and keep tasks until N are accepted; print the report."""
    spec = cli_spec(domain)
    parsed = cli_level(spec, level)
    kind = cli_solver(solver, model, base_url)
    if ray_address is not None and model is not None:
        raise typer.BadParameter("--ray runs the domain's scripted experts; drop --model")
    if guess_tries > 1 and model is None:
        raise typer.BadParameter(
            "--guess-tries needs --model: the scripted guesser is deterministic, so every try "
            "would repeat the first"
        )
    visit_summariser = cli_summariser(summariser, summariser_backend, summariser_url)
    if ray_address is not None and visit_summariser is not None:
        raise typer.BadParameter("--summariser runs in this process; drop it or --ray")
    out.mkdir(parents=True, exist_ok=True)
    runner = None
    if ray_address is not None:
        inputs = SynthWorkerSpec(
            domain=spec.name,
            level=parsed.model_dump(mode="json"),
            seed=seed,
            out=out.resolve(),
            tokenizer=tokenizer,
        )
        runner = _ray_runner(inputs, ray_address, workers, concurrency)
    run = synthesize(
        spec,
        n,
        out,
        level=parsed,
        model=model,
        backend=kind,
        base_url=base_url,
        tokenizer=tokenizer,
        seed=seed,
        concurrency=concurrency,
        kag_dsn=kag,
        eval_sets=eval_set,
        runner=runner,
        guess_tries=guess_tries,
        summariser=visit_summariser,
    )
    try:
        report = asyncio.run(run)
    except CorpusError as exc:  # a user's corpus (--level's) that cannot be read: a usage error
        raise typer.BadParameter(str(exc), param_hint="--level") from None
    print_report(report, console)
    console.print(
        f"tasks: {out / 'tasks'}  trajectories: {out / 'trajectories'}  "
        f"report: {out / 'synth_report.json'}"
    )


def _ray_runner(
    spec: SynthWorkerSpec, address: str, workers: int, concurrency: int
) -> AttemptRunner:
    """Ray workers for a batch of `concurrency` proposals, spread evenly over `workers`."""
    try:  # Ray is an optional extra: without it, say how to install it
        from longhorizon.domains.synth_ray import RayAttempts, start_synth_workers
        from longhorizon.scaleout.ray_cluster import connect
    except ImportError as exc:
        raise typer.BadParameter(str(exc)) from None

    connect(None if address == "local" else address, num_cpus=workers)
    per_worker = -(-concurrency // workers)  # ceil: one batch fills every worker
    return RayAttempts(start_synth_workers(spec, workers, per_worker), per_worker)


def cli_solver(solver: str, model: str | None, base_url: str | None) -> BackendKind:
    """--solver, checked against --model and --base-url (usage errors, exit 2)."""
    if solver not in get_args(BackendKind):
        raise typer.BadParameter(f"--solver must be hf, openai or vllm, not {solver!r}")
    if solver != "hf" and model is None:
        raise typer.BadParameter(f"--solver {solver} needs --model (the model that solves)")
    if (solver == "openai") != (base_url is not None):
        raise typer.BadParameter("--base-url goes with --solver openai, and only with it")
    return cast(BackendKind, solver)


def cli_spec(domain: str) -> DomainSpec[Any]:
    """--domain, with an unknown name reported as a usage error listing the registered ones."""
    try:
        return registry.get(domain)
    except registry.UnknownDomainError as exc:
        raise typer.BadParameter(str(exc)) from None


def cli_level(spec: DomainSpec[Any], text: str | None) -> BaseModel:
    """--level, with a bad value reported as a usage error (exit 2)."""
    try:
        return spec.parse_level(text)
    except LevelError as exc:
        raise typer.BadParameter(str(exc)) from None


def cli_levels(items: list[str]) -> dict[str, dict[str, Any]]:
    """`--level DOMAIN=JSON` options as the domain -> level mapping `EvalOptions.levels` takes."""
    levels: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--level {item!r}: expected DOMAIN=JSON")
        levels[name] = cli_level(cli_spec(name), text).model_dump(mode="json")
    return levels
