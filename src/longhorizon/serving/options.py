"""The rollout engine's typed options (`serving/engine.py`), kept free of heavy imports: the
trainers' configs, which the CLI loads before any model, import them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BOOKKEEPING_FIELDS", "EngineKind", "VLLMEngineConfig"]

# hf: an in-process copy of the policy; vllm: a vLLM server whose weights are synced in place
EngineKind = Literal["hf", "vllm"]
# Where a run's vLLM engine is and what it checks, not what it computes: left out of
# checkpoint fingerprints (a resumed run may attach to another port).
BOOKKEEPING_FIELDS = ("base_url", "sync_dir", "startup_timeout_s", "check_tokens")


class VLLMEngineConfig(BaseModel):
    """Where the vLLM rollout engine runs and how it is started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(
        default=None,
        description="attach to a running server started with weight sync (`longhorizon vllm "
        "serve MODEL --weight-sync`); None: start one on loopback for the run",
    )
    dtype: str = "float32"
    max_model_len: int = Field(default=4096, ge=16)
    startup_timeout_s: float = Field(default=600.0, gt=0)
    sync_dir: Path | None = Field(
        default=None,
        description="folder the weight checkpoints are written to for the server to read "
        "(default OUTPUT_DIR/engine); the server must see it",
    )
    check_tokens: int = Field(
        default=0,
        ge=0,
        description="after each sync, this many greedy tokens of the server on a fixed prompt "
        "are compared with the trainer's (logged as engine.greedy_match; 0: off)",
    )
