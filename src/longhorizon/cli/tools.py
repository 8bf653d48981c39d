"""`longhorizon tools`: list the tools and run one tool call by hand, as the harness would."""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from longhorizon.cli.summariser import (
    SUMMARISER,
    SUMMARISER_BACKEND,
    SUMMARISER_URL,
    cli_summariser,
)
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.serving.summariser import SummariserConfig, summariser_resources
from longhorizon.tools.catalog import TOOLS, build_toolset
from longhorizon.tools.types import ToolContext, ToolResult

console = Console()
app = typer.Typer(help="List the agent's tools and run single tool calls.", no_args_is_help=True)


@app.command("list")
def list_tools() -> None:
    """List every tool with its description and arguments."""
    table = Table(title="longhorizon tools")
    for column in ("name", "description", "arguments"):
        table.add_column(column)
    for name in TOOLS:
        try:
            tool_ = TOOLS[name]
        except ImportError as exc:  # e.g. a tool whose optional module is not installed
            table.add_row(name, escape(f"unavailable: {exc}"), "")
            continue
        required = set(tool_.parameters.get("required", []))
        args = [a if a in required else f"[{a}]" for a in tool_.parameters.get("properties", {})]
        table.add_row(name, escape(tool_.description), escape(" ".join(args)))
    console.print(table)


def _parse_args(text: str) -> dict[str, Any]:
    """The --args JSON object; a usage error (exit code 2) when it is not one."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON ({exc.msg} at char {exc.pos}): {text}") from None
    if not isinstance(value, dict):
        raise typer.BadParameter(f'must be a JSON object like \'{{"query": "..."}}\': {text}')
    return value


def _resources(corpus: list[Path] | None, cache_dir: Path | None) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if corpus:
        from longhorizon.tools.corpus import CorpusIndex

        resources["corpus_index"] = CorpusIndex.open(corpus, cache_dir=cache_dir)
    return resources


async def _execute(
    name: str, arguments: dict[str, Any], ctx: ToolContext, summariser: SummariserConfig | None
) -> ToolResult:
    toolset = build_toolset([name])
    function = FunctionCall(name=name, arguments=json.dumps(arguments))
    call = ToolCall(id=f"cli-{uuid.uuid4().hex[:8]}", function=function)
    try:
        async with summariser_resources(summariser) as opened:  # as every stage opens it
            ctx.resources.update(opened)
            return await toolset.execute(call, ctx)
    finally:
        await ctx.aclose()  # e.g. stops a python sandbox process


@app.command("run")
def run_tool(
    name: str = typer.Argument(..., metavar="NAME", help="tool name (`tools list`)"),
    args: str = typer.Option("{}", "--args", help='arguments as a JSON object, e.g. {"k": 3}'),
    workdir: Path | None = typer.Option(None, help="episode working directory (default: temp)"),
    corpus: list[Path] | None = typer.Option(
        None, help="corpus file (.jsonl / .parquet) for search and visit; repeatable"
    ),
    cache_dir: Path | None = typer.Option(None, help="BM25 cache root (default: beside corpus)"),
    summariser: str | None = SUMMARISER,
    summariser_backend: str | None = SUMMARISER_BACKEND,
    summariser_url: str | None = SUMMARISER_URL,
) -> None:
    """Run one tool call with a fresh episode context and print the observation."""
    if name not in TOOLS:
        raise typer.BadParameter(f"unknown tool {name!r}; known tools: {', '.join(TOOLS)}")
    arguments = _parse_args(args)
    visit_summariser = cli_summariser(summariser, summariser_backend, summariser_url)
    resources = _resources(corpus, cache_dir)
    with tempfile.TemporaryDirectory(prefix="longhorizon-tool-") as tmp:
        root = workdir if workdir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        ctx = ToolContext(episode_id="cli", workdir=root, resources=resources)
        result = asyncio.run(_execute(name, arguments, ctx, visit_summariser))
    # Plain echo, not rich: observations contain [brackets] rich would read as markup.
    typer.echo(result.content)
    typer.echo("---")
    typer.echo(f"error: {'yes' if result.error else 'no'}")
    typer.echo(f"duration: {result.duration_s:.3f} s")
    if result.refs:
        typer.echo(f"refs: {', '.join(result.refs)}")
    if result.truncated:
        typer.echo("truncated: yes")
    if not result.ok:
        raise typer.Exit(1)
