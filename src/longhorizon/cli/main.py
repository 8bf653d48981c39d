"""The `longhorizon` command: one subcommand per part of the pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from longhorizon.cli import (
    distill,
    evaluate,
    kag,
    models,
    rollout,
    store,
    synth,
    tools,
    train,
    vllm,
)

console = Console()
app = typer.Typer(
    help="longhorizon: long-horizon agents by scaling trajectories, not parameters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(models.app, name="models")
app.add_typer(vllm.app, name="vllm")
app.add_typer(store.app, name="store")
app.add_typer(tools.app, name="tools")
app.add_typer(kag.app, name="kag")


@app.command("run")
def run(
    model: str = typer.Option("smollm2-135m", help="short name, checkpoint dir or hub id"),
    out: Path = typer.Option(Path("runs/default"), help="run directory"),
    max_turns: int = typer.Option(3, min=1, help="T_max per episode"),
    max_tokens: int = typer.Option(96, min=1, help="L_resp per model call"),
) -> None:
    """Run the main job on its built-in default and print the results table."""
    from longhorizon.harness.backends import open_agent
    from longhorizon.pipeline.smoke import SmokeConfig, run_smoke

    cfg = SmokeConfig(model=model, out=out, max_turns=max_turns, max_tokens=max_tokens)

    async def main():  # type: ignore[no-untyped-def]
        async with open_agent(model, "hf") as agent:
            return await run_smoke(agent, cfg)

    report, trajectories = asyncio.run(main())
    table = Table(title=f"{model}: arithmetic with a calculator tool")
    for column in ("task", "status", "turns", "tool calls", "tokens", "answer", "passed"):
        table.add_column(column)
    for t in sorted(trajectories, key=lambda t: t.id):
        tokens = sum(len(s) for s in t.token_sequences())
        row = (
            t.task_id,
            t.status.value,
            t.usage.model_calls,
            len(t.steps),
            tokens,
            t.final_answer,
            t.passed,
        )
        table.add_row(*map(str, row))
    console.print(table)
    console.print(f"{report.line()}  ({report.skipped} episodes reused from an earlier run)")
    console.print(f"trajectories: {out / 'trajectories'}  parquet: {out / 'trajectories.parquet'}")


app.command("rollout")(rollout.rollout)
app.command("synth")(synth.synth)
app.command("sft")(train.sft)
app.command("teach")(train.teach)
app.command("eval")(evaluate.evaluate)
app.command("distill")(distill.distill)


if __name__ == "__main__":
    app()
