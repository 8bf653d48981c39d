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
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from longhorizon.core.files import write_text_atomic
from longhorizon.core.provenance import code_version

__all__ = [
    "RESULTS_DIR",
    "peak_rss_bytes",
    "provenance",
    "require_peer",
    "reset_peak_rss",
    "run_child",
    "write_result",
]

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


# ---- peak memory of one measured run, in a fresh child process (Linux) ---------------------
def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak_rss() -> int:
    """Reset this process's peak-RSS mark (VmHWM) to its current RSS, which it returns.

    `clear_refs` 5 needs Linux >= 4.0. torch's CPU allocator returns big blocks to the OS, so
    the peak RSS over this baseline is the run's peak extra memory (tracemalloc sees none of it).
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    return _status_bytes("VmHWM")


def run_child(script: str, spec: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """`python SCRIPT --child SPEC_JSON` in a fresh process: its last stdout line as JSON, or
    {"error": why} when it failed, was killed or timed out."""
    cmd = [sys.executable, script, "--child", json.dumps(spec)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        reason = "killed (out of memory?)" if proc.returncode < 0 else tail[0]
        return {"error": reason}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result
