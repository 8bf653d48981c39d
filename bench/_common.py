"""What every benchmark script shares: where its result goes, the provenance it carries, and a
clear exit when the peer it compares against is not installed.

Each script writes `bench/results/<name>.json` with `write_result(name, payload)`: the payload
plus a `provenance` block (code version with the git commit, time, host, library versions),
written atomically so a killed benchmark never leaves half a file behind.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from longhorizon.core.files import write_text_atomic
from longhorizon.core.provenance import code_version

__all__ = ["RESULTS_DIR", "provenance", "require_peer", "write_result"]

RESULTS_DIR = Path(__file__).parent / "results"
REQUIREMENTS = "pip install -r requirements-bench.txt"
# The libraries whose versions decide the numbers; a missing one is recorded as None.
_PACKAGES = ("torch", "transformers", "accelerate", "trl", "vllm")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def provenance() -> dict[str, Any]:
    """Where and from what code a number was measured (the cores may be shared: load too)."""
    return {
        "code_version": code_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "load_average": list(os.getloadavg()),
        "versions": {p: _version(p) for p in _PACKAGES},
    }


def write_result(name: str, payload: dict[str, Any], results_dir: Path = RESULTS_DIR) -> Path:
    """Write `results_dir/<name>.json` atomically: `bench`, `provenance`, then the payload."""
    clash = {"bench", "provenance"} & payload.keys()
    if clash:
        raise ValueError(f"payload keys {sorted(clash)} are written by write_result itself")
    record = {"bench": name, "provenance": provenance(), **payload}
    path = write_text_atomic(results_dir / f"{name}.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def require_peer(module: str, install_hint: str = REQUIREMENTS) -> ModuleType:
    """Import the peer a benchmark compares against, or exit saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SystemExit(
            f"this benchmark compares against {module!r}, which cannot be imported here "
            f"({type(exc).__name__}: {exc}).\nInstall it with: {install_hint}"
        ) from None
