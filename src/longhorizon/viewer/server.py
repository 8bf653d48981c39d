"""`longhorizon view`: serve the viewer with uvicorn, on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import uvicorn

from longhorizon.viewer.app import create_app
from longhorizon.viewer.state import ViewerState

__all__ = ["DEFAULT_HOST", "exposure_warning", "make_server"]

DEFAULT_HOST = "127.0.0.1"


def exposure_warning(host: str) -> str | None:
    """A warning when `host` is reachable from other machines (None for loopback)."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return None
    return (
        f"WARNING: serving on {host}: anyone who can reach this machine can read this run "
        "(trajectories, tasks, evaluation items) with no authentication"
    )


def make_server(
    roots: dict[str, Path],
    host: str = DEFAULT_HOST,
    port: int = 8765,
    tokenizer: Path | None = None,
) -> tuple[uvicorn.Server, socket.socket]:
    """A uvicorn server for the runs and its bound socket (port 0: any free port)."""
    for name, root in roots.items():
        if not root.is_dir():
            raise FileNotFoundError(f"{name}: {root} is not a directory")
    app = create_app(ViewerState.open(roots, tokenizer))
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections made before uvicorn starts wait in the backlog
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    return uvicorn.Server(config), sock
