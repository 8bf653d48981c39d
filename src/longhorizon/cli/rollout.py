"""`longhorizon rollout`: run a task file through the harness into a trajectory store."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.core import SamplingParams, Task, TrajectoryStore
from longhorizon.harness import (
    BackendAgent,
    EpisodeRunner,
    HarnessConfig,
    RolloutReport,
    run_rollouts,
)
from longhorizon.serving.backends import BackendKind, open_backend
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

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


def _resources(corpus: list[Path]) -> dict[str, Any]:
    if not corpus:
        return {}
    from longhorizon.tools.corpus import CorpusIndex

    return {"corpus_index": CorpusIndex.open(corpus)}


def rollout(
    tasks: Path = typer.Option(..., exists=True, dir_okay=False, help="JSONL file of tasks"),
    model: str = typer.Option(..., help="short name, checkpoint dir, or served model name"),
    out: Path = typer.Option(..., help="run directory (trajectories/ and report.json)"),
    concurrency: int = typer.Option(8, min=1, help="episodes in flight"),
    backend: str = typer.Option("hf", help="hf, openai (with --base-url) or vllm (starts one)"),
    base_url: str | None = typer.Option(None, help="server base URL, e.g. http://host:8000/v1"),
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
) -> None:
    """Run every task not yet in OUT, streaming trajectories into OUT/trajectories."""
    if backend not in ("hf", "openai", "vllm"):
        raise typer.BadParameter(f"--backend must be hf, openai or vllm, not {backend!r}")
    config = HarnessConfig(
        sampling=SamplingParams(temperature=temperature, seed=seed),
        workdir=out / "workdirs",
        model_concurrency=concurrency,
        tool_concurrency=tool_concurrency,
    )
    task_list = load_tasks(tasks)
    report = asyncio.run(
        _run(
            task_list,
            model,
            backend,  # type: ignore[arg-type]
            base_url,
            tokenizer,
            corpus,
            config,
            out,
            samples,
            (user_model, user_base_url),
        )
    )
    _print(report, out)


async def _run(
    tasks: list[Task],
    model: str,
    kind: BackendKind,
    base_url: str | None,
    tokenizer: str | None,
    corpus: list[Path],
    config: HarnessConfig,
    out: Path,
    samples: int,
    user: tuple[str | None, str | None] = (None, None),
) -> RolloutReport:
    store = TrajectoryStore(out / "trajectories")
    async with contextlib.AsyncExitStack() as stack:
        backend = await stack.enter_async_context(
            open_backend(
                model,
                kind,
                base_url=base_url,
                tokenizer=tokenizer,
                max_concurrency=config.model_concurrency,
            )
        )
        resources = _resources(corpus)
        if user[0] is not None:  # the LLM persona behind ask_user
            user_kind: BackendKind = "openai" if user[1] else "hf"
            user_backend = open_backend(user[0], user_kind, base_url=user[1], tokenizer=tokenizer)
            resources["user_model"] = await stack.enter_async_context(user_backend)
        runner = EpisodeRunner(
            BackendAgent(backend),
            lambda task: build_toolset(task.protocol.tools),
            config,
            verify=verify_answer,
            resources=resources,
        )
        report = await run_rollouts(
            runner, tasks, store, concurrency=config.model_concurrency, samples_per_task=samples
        )
    store.close()
    return report


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
