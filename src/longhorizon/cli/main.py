"""The `longhorizon` command: one subcommand per part of the pipeline."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import typer
from rich.console import Console

from longhorizon.cli import (
    ablate,
    distill,
    evaluate,
    kag,
    models,
    report,
    rl,
    rollout,
    store,
    synth,
    tools,
    train,
    view,
    vllm,
)
from longhorizon.cli.errors import print_error
from longhorizon.core.logs import send_third_party_to
from longhorizon.models.checkpoints import home

console = Console()
app = typer.Typer(
    help="longhorizon: long-horizon agents by scaling trajectories, not parameters.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _third_party_to_log() -> None:
    # Library bars and warnings go to a log under the cache; `run` moves them to RUN/run.log.
    send_third_party_to(home() / "logs" / "cli.log")


app.add_typer(models.app, name="models")
app.add_typer(vllm.app, name="vllm")
app.add_typer(store.app, name="store")
app.add_typer(tools.app, name="tools")
app.add_typer(kag.app, name="kag")


def _recipe_path(recipe: str) -> Path:
    """A recipe file, or the name of a built-in one (tiny, smollm2, agents-a1)."""
    from longhorizon.pipeline.recipe import find_recipe

    try:
        return find_recipe(recipe)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("run")
def run(
    recipe: str = typer.Argument(
        "tiny", help="recipe file or built-in name (tiny, smollm2, agents-a1)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="resolve, validate and print the plan"),
    out: Path | None = typer.Option(None, help="run directory (default: the recipe's)"),
    smoke: bool = typer.Option(
        False,
        "--smoke",
        help="the recipe's own stages and wiring with every size scaled down (a tiny student "
        "of its family, a few tasks and steps; out: the recipe's + '-smoke')",
    ),
) -> None:
    """Run the whole recipe: synth -> SFT -> teachers -> OPD-SVA -> eval -> report."""
    from longhorizon.pipeline.recipe import load_recipe
    from longhorizon.pipeline.run import run_pipeline
    from longhorizon.pipeline.show import print_plan
    from longhorizon.pipeline.smoke import smoke_recipe, smoke_servers

    try:
        loaded = load_recipe(_recipe_path(recipe))
        if smoke:
            loaded = smoke_recipe(loaded, out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if out is not None:
        loaded = loaded.model_copy(update={"out": out})
    if dry_run:
        print_plan(loaded)
        return
    if not smoke:
        run_pipeline(loaded)
        return
    with smoke_servers(loaded, loaded.out / "logs") as served:
        run_pipeline(served)


app.command("rollout")(rollout.rollout)
app.command("synth")(synth.synth)
app.command("sft")(train.sft)
app.command("teach")(train.teach)
app.command("eval")(evaluate.evaluate)
app.command("distill")(distill.distill)
app.command("rl")(rl.rl)
app.command("report")(report.report)
app.command("ablate")(ablate.ablate)
app.command("view")(view.view)


def _usage_errors() -> tuple[type[Exception], ...]:
    """What bad input raises below the commands: a one-line error, not a traceback."""
    import sqlite3

    from pydantic import ValidationError

    from longhorizon.core.store import StoreError
    from longhorizon.domains.registry import PluginError, UnknownDomainError
    from longhorizon.kag.dialect import KAGConnectError
    from longhorizon.models.registry import UnknownModelError
    from longhorizon.tools.corpus import CorpusError
    from longhorizon.training.data import DataError
    from longhorizon.training.modeling import PackingError

    return (
        PluginError,
        UnknownDomainError,
        UnknownModelError,
        ValidationError,
        CorpusError,
        DataError,
        PackingError,
        StoreError,
        sqlite3.Error,
        KAGConnectError,
    )


def _message(exc: Exception) -> str:
    """The error's text without pydantic's documentation links."""
    lines = [x for x in str(exc).splitlines() if "errors.pydantic.dev" not in x]
    return "\n".join(lines)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    del frame
    raise SystemExit(128 + signum)


def main() -> None:
    """The `longhorizon` command: bad input found below a command (a plug-in domain that
    cannot load, a model name that names nothing, an invalid stage config, a broken corpus,
    store or database, training data the filters leave empty) is a usage error, not a
    traceback; LONGHORIZON_TRACEBACK=1 shows it. SIGTERM exits as Ctrl-C does, through
    `with` blocks and atexit, so the model servers a command started stop with it."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        app()
    except _usage_errors() as exc:
        if os.environ.get("LONGHORIZON_TRACEBACK"):
            raise
        print_error(_message(exc))
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
