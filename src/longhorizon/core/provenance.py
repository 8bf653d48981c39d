"""Where a record came from: enough to reproduce it or to audit it."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from longhorizon import __version__
from longhorizon.core.sampling import SamplingParams


def utc_now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version plus the git commit when running from a checkout."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__


class Provenance(BaseModel):
    """How a task was made: generator (program or model), seed, source corpus region."""

    source: str = "manual"
    generator: str | None = None
    seed: int | None = None
    code_version: str = Field(default_factory=code_version)
    created_at: datetime = Field(default_factory=utc_now)
    extra: dict[str, Any] = Field(default_factory=dict)


class RunProvenance(BaseModel):
    """How a trajectory was produced: which model, through which backend, sampled how."""

    model: str
    backend: str
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    seed: int | None = None
    code_version: str = Field(default_factory=code_version)
    created_at: datetime = Field(default_factory=utc_now)
