"""Where the benchmark data lives: one explicit setting, never a silent guess.

`LONGHORIZON_BENCHMARKS` names the folder (holding `ifeval/`, `molbench/`, ...). Unset, a
source checkout falls back to `../shared/data/benchmarks` beside the repository when that
folder exists. `LONGHORIZON_BENCHMARKS=none` turns benchmark data off on purpose: the
contamination audit then reports "audit off", and the benchmark adapters refuse to run.
Anything else that finds no folder raises `BenchmarkDataMissing`, which says what to set:
an audit that indexed nothing would report "0 flagged", which reads as clean data.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "BENCHMARKS_ENV",
    "BENCHMARKS_OFF",
    "BenchmarkDataMissing",
    "benchmark_dir",
    "benchmark_file",
    "benchmarks_off",
    "checkout_benchmark_dir",
    "configured_benchmark_dir",
]

BENCHMARKS_ENV = "LONGHORIZON_BENCHMARKS"
BENCHMARKS_OFF = "none"  # the value that turns benchmark data (and the audit) off
_HOW = (
    f"set {BENCHMARKS_ENV} to the benchmark folder (the one holding ifeval/ and molbench/), "
    f"or {BENCHMARKS_ENV}={BENCHMARKS_OFF} to run without benchmarks and the contamination audit"
)


class BenchmarkDataMissing(FileNotFoundError):
    """Benchmark data was needed and the setting does not lead to it."""


def checkout_benchmark_dir() -> Path | None:
    """`../shared/data/benchmarks` beside a source checkout (not an installed package)."""
    root = Path(__file__).resolve().parents[3]  # core -> longhorizon -> src -> repository
    if not (root / "pyproject.toml").is_file():
        return None
    return root.parent / "shared" / "data" / "benchmarks"


def benchmarks_off() -> bool:
    """True when the user turned benchmark data off (`LONGHORIZON_BENCHMARKS=none`)."""
    return os.environ.get(BENCHMARKS_ENV, "").strip().lower() == BENCHMARKS_OFF


def configured_benchmark_dir() -> Path | None:
    """The folder the setting names, or None when it is off or names nothing; never raises."""
    value = os.environ.get(BENCHMARKS_ENV, "").strip()
    if value.lower() == BENCHMARKS_OFF:
        return None
    if value:
        return Path(value).expanduser()
    fallback = checkout_benchmark_dir()
    return fallback if fallback is not None and fallback.is_dir() else None


def benchmark_dir() -> Path:
    """The benchmark folder; raises BenchmarkDataMissing (saying what to set) when there is none."""
    value = os.environ.get(BENCHMARKS_ENV, "").strip()
    if value.lower() == BENCHMARKS_OFF:
        raise BenchmarkDataMissing(f"benchmark data is off ({BENCHMARKS_ENV}={value}); {_HOW}")
    path = configured_benchmark_dir()
    if path is None:
        looked = checkout_benchmark_dir()
        where = f" (no {looked})" if looked is not None else ""
        raise BenchmarkDataMissing(f"no benchmark data: {BENCHMARKS_ENV} is unset{where}; {_HOW}")
    if not path.is_dir():
        raise BenchmarkDataMissing(f"{BENCHMARKS_ENV}={path} is not a folder; {_HOW}")
    return path


def benchmark_file(*parts: str) -> Path:
    """A file under the benchmark folder; raises BenchmarkDataMissing naming it when absent."""
    path = benchmark_dir().joinpath(*parts)
    if not path.is_file():
        raise BenchmarkDataMissing(f"{path} is missing from the benchmark folder; {_HOW}")
    return path
