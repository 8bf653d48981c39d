"""`longhorizon view RUN_DIR`: the trajectory and run viewer in the browser."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from longhorizon.cli.errors import usage_error

console = Console()


def view(
    run_dir: Path = typer.Argument(..., help="a run directory (longhorizon run, or any store)"),
    port: int = typer.Option(8765, min=0, max=65535, help="port to serve on (0: any free port)"),
    host: str = typer.Option(
        "127.0.0.1", help="address to bind; anything but loopback exposes the run (a warning)"
    ),
    compare: Path | None = typer.Option(
        None, help="a second run, to compare on the same held-out items"
    ),
    tokenizer: Path | None = typer.Option(
        None, help="tokenizer directory for the token view (default: the first the run saved)"
    ),
) -> None:
    """Serve a local web app over everything a run wrote: lists, episodes, tokens, OPD, KAG."""
    # Imported here: uvicorn and Starlette load only for this command, not for every command.
    from longhorizon.viewer.server import exposure_warning, make_server

    roots = {"run": run_dir} | ({"other": compare} if compare is not None else {})
    try:
        server, sock = make_server(roots, host, port, tokenizer)
    except FileNotFoundError as exc:  # a run, compared run or tokenizer that is not there
        usage_error(str(exc))
    except OSError as exc:  # the address: in use, or not this machine's
        usage_error(str(exc) if str(host) in str(exc) else f"{host}:{port}: {exc}")
    warning = exposure_warning(host)
    if warning:
        console.print(f"[bold red]{escape(warning)}[/bold red]")
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    console.print(f"viewing {escape(str(run_dir))} at http://{shown}:{bound_port}/ (Ctrl-C stops)")
    server.run(sockets=[sock])
