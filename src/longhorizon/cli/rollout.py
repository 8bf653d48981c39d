"""`longhorizon rollout`: run a task file through the harness into a trajectory store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.cli.summariser import (
    SUMMARISER,
    SUMMARISER_BACKEND,
    SUMMARISER_URL,
    cli_summariser,
)
from longhorizon.core import SamplingParams, Task, TrajectoryStore
from longhorizon.harness import HarnessConfig, RolloutReport, run_rollouts
from longhorizon.scaleout import RolloutSpec, open_runner

console = Console()


def load_tasks(path: Path) -> list[Task]:
    """Tasks from JSONL; a bad line is reported with its number."""
    tasks = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            tasks.append(Task.model_validate_json(line))
        except ValueError as exc:
            raise typer.BadParameter(f"{path}:{lineno}: not a valid Task: {exc}") from None
    return tasks


RAY = typer.Option(
    None,
    "--ray",
    metavar="ADDRESS",
    help="run episodes on Ray workers: `local` (a cluster started on 127.0.0.1 for the run), "
    "`auto` (the one `ray start` made here) or HOST:PORT",
)


def rollout(
    tasks: Path = typer.Option(..., exists=True, dir_okay=False, help="JSONL file of tasks"),
    model: str = typer.Option(..., help="short name, checkpoint dir, or served model name"),
    out: Path = typer.Option(..., help="run directory (trajectories/ and report.json)"),
    concurrency: int = typer.Option(8, min=1, help="episodes in flight (per worker with --ray)"),
    backend: str = typer.Option("hf", help="hf, openai (with --base-url) or vllm (starts one)"),
    base_url: list[str] = typer.Option(
        [], help="server base URL, e.g. http://host:8000/v1; repeat it for several servers"
    ),
    tokenizer: str | None = typer.Option(None, help="tokenizer dir (openai backend)"),
    corpus: list[Path] = typer.Option([], help="corpus JSONL/Parquet for search and visit"),
    samples: int = typer.Option(1, min=1, help="episodes per task"),
    temperature: float = typer.Option(0.0, min=0.0),
    seed: int | None = typer.Option(None),
    tool_concurrency: int = typer.Option(8, min=1, help="tool executions in flight"),
    user_model: str | None = typer.Option(
        None, help="model that plays the user of tool-calling tasks (default: scripted persona)"
    ),
    user_base_url: str | None = typer.Option(
        None, help="OpenAI-compatible server of --user-model (default: load it in process)"
    ),
    ray_address: str | None = RAY,
    workers: int = typer.Option(2, min=1, help="Ray workers (with --ray)"),
    summariser: str | None = SUMMARISER,
    summariser_backend: str | None = SUMMARISER_BACKEND,
    summariser_url: str | None = SUMMARISER_URL,
) -> None:
    """Run every task not yet in OUT, streaming trajectories into OUT/trajectories."""
    if backend not in ("hf", "openai", "vllm"):
        raise typer.BadParameter(f"--backend must be hf, openai or vllm, not {backend!r}")
    if backend == "openai" and not base_url:
        raise typer.BadParameter("--backend openai needs --base-url (the server's /v1 URL)")
    spec = RolloutSpec(
        model=model,
        backend=backend,
        base_urls=tuple(base_url),
        tokenizer=tokenizer,
        corpus=tuple(corpus),
        harness=HarnessConfig(
            sampling=SamplingParams(temperature=temperature, seed=seed),
            workdir=out / "workdirs",
            model_concurrency=concurrency,
            tool_concurrency=tool_concurrency,
        ),
        user_model=user_model,
        user_base_url=user_base_url,
        summariser=cli_summariser(summariser, summariser_backend, summariser_url),
    )
    task_list = load_tasks(tasks)
    if ray_address is None:
        report = asyncio.run(_run(spec, task_list, out, samples))
    else:
        report = _run_ray(spec, task_list, out, samples, ray_address, workers)
    _print(report, out)


async def _run(spec: RolloutSpec, tasks: list[Task], out: Path, samples: int) -> RolloutReport:
    """The embedded path: one process, episodes as asyncio tasks."""
    store = TrajectoryStore(out / "trajectories")
    try:
        async with open_runner(spec) as runner:
            return await run_rollouts(
                runner,
                tasks,
                store,
                concurrency=spec.harness.model_concurrency,
                samples_per_task=samples,
            )
    finally:
        store.close()


def _run_ray(
    spec: RolloutSpec, tasks: list[Task], out: Path, samples: int, address: str, workers: int
) -> RolloutReport:
    """Episodes on `workers` Ray actors; this process (the driver) writes the store."""
    try:  # Ray is an optional extra: without it, say how to install it
        from longhorizon.scaleout.ray_cluster import connect
        from longhorizon.scaleout.ray_rollouts import run_rollouts_ray, start_workers
    except ImportError as exc:
        raise typer.BadParameter(str(exc)) from None

    connect(None if address == "local" else address, num_cpus=workers)
    per_worker = spec.harness.model_concurrency
    store = TrajectoryStore(out / "trajectories")
    try:
        pool = start_workers(spec, workers, per_worker)
        return run_rollouts_ray(pool, tasks, store, per_worker=per_worker, samples_per_task=samples)
    finally:
        store.close()


def _print(report: RolloutReport, out: Path) -> None:
    table = Table(title="rollout")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = {
        "episodes (total)": report.total,
        "skipped (already stored)": report.skipped,
        "finished": report.finished,
        "passed": report.passed,
        "success rate": f"{report.success_rate:.1%}",
        "aborted (not stored)": report.aborted,
        "reruns (worker lost)": report.reruns,
        "duplicates (not stored again)": report.duplicates,
        "statuses": ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())),
        "completion tokens/s": f"{report.tokens_per_s:.1f}",
        "time in tools": f"{report.tool_share:.1%}",
        "wall s": f"{report.wall_s:.1f}",
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    console.print(table)
    summary = {k: v for k, v in vars(report).items() if k != "statuses"}
    summary["statuses"] = dict(report.statuses)
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    console.print(f"trajectories: {out / 'trajectories'}   report: {out / 'report.json'}")
