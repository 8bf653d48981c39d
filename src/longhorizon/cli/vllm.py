"""`longhorizon vllm`: create the vLLM environment and serve a model with it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import typer
from rich.console import Console

console = Console()
app = typer.Typer(help="Run a real vLLM OpenAI-compatible server (CPU build here, GPU at scale).")


def _script() -> Path:
    return Path(__file__).resolve().parents[3] / "scripts" / "setup_vllm.sh"


@app.command("setup")
def setup() -> None:
    """Create the separate vLLM virtual environment (idempotent)."""
    script = _script()
    if not script.exists():
        raise typer.BadParameter(f"{script} not found: run from a longhorizon checkout")
    raise typer.Exit(subprocess.call(["bash", str(script)]))


@app.command("serve")
def serve(
    model: str = typer.Argument(..., help="short name or checkpoint directory"),
    port: int = typer.Option(0, help="0 picks a free loopback port"),
    max_model_len: int = typer.Option(4096, help="context length the server accepts"),
    weight_sync: bool = typer.Option(
        False,
        "--weight-sync",
        help="a rollout engine a trainer syncs weights into (rollout.vllm.base_url): dev-mode "
        "endpoints on; serve only on a trusted host",
    ),
) -> None:
    """Serve MODEL on loopback until interrupted; prints the base URL."""
    from longhorizon.models.registry import resolve_model
    from longhorizon.serving.vllm import VLLMServer

    server = VLLMServer(
        resolve_model(model),
        port=port or None,
        max_model_len=max_model_len,
        weight_sync=weight_sync,
    )
    with server as s:
        console.print(f"[green]vLLM ready[/green] at {s.base_url}  (Ctrl-C stops it)")
        try:
            while s.running:
                time.sleep(1.0)
        except KeyboardInterrupt:
            console.print("stopping")
        if not s.running:
            console.print(f"[red]vLLM exited[/red]\n{s.log_tail()}")
