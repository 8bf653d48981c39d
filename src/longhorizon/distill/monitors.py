"""The per-token monitor log of an OPD run: `token_monitors.jsonl`, one line per trained sample.

The loss already computes, at every trained position, the reverse-KL estimate and the
student's coverage rho of the teacher's top-k; `metrics.jsonl` keeps only their means. This
log keeps them per token, with the routed teacher's top-k at each position, so a person can
see *where* the student disagrees with its teacher (the viewer draws it as a heatmap). The
student's own top-k at each generated token is in the rollout itself (`ModelCall.top_logprobs`,
recorded when the log is on). A sample is logged at its first update of the step (the update
whose student is closest to the policy that sampled it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from longhorizon.core.files import write_text_atomic
from longhorizon.distill.batch import RolloutSample
from longhorizon.distill.scoring import TeacherScores

__all__ = ["MONITORS_FILE", "SampleMonitors", "TokenMonitorLog", "read_token_monitors"]

MONITORS_FILE = "token_monitors.jsonl"


class SampleMonitors(BaseModel):
    """One trained sequence of one step: per-position values, aligned with `positions`."""

    step: int
    trajectory_id: str
    sequence: int  # index into the trajectory's token_sequences()
    domain: str
    teacher: str  # the model id of the teacher that scored it
    positions: list[int]  # token positions in the sequence (the trained ones)
    kl: list[float]
    coverage: list[float] | None = None
    teacher_top_ids: list[list[int]]
    teacher_top_logprobs: list[list[float]]


def sample_monitors(
    step: int,
    sample: RolloutSample,
    teacher: str,
    scores: TeacherScores,
    values: dict[str, list[Any]],
    top_k: int,
) -> SampleMonitors:
    """Join the loss's per-position values with the teacher's top-k at the same positions."""
    row_of = {int(p): i for i, p in enumerate(scores.positions.tolist())}
    rows = [row_of[p] for p in values["positions"]]
    top_ids = scores.top_ids[rows, :top_k] if rows else np.zeros((0, top_k), np.int64)
    top_lp = scores.top_logprobs[rows, :top_k] if rows else np.zeros((0, top_k), np.float32)
    return SampleMonitors(
        step=step,
        trajectory_id=sample.trajectory_id,
        sequence=sample.sequence,
        domain=sample.domain,
        teacher=teacher,
        positions=values["positions"],
        kl=values["kl"],
        coverage=values["coverage"],
        teacher_top_ids=top_ids.tolist(),
        teacher_top_logprobs=[[round(float(v), 5) for v in r] for r in top_lp],
    )


def read_token_monitors(output_dir: Path) -> list[SampleMonitors]:
    """Every complete line of the log (a torn last line from a killed run is ignored)."""
    path = Path(output_dir) / MONITORS_FILE
    if not path.exists():
        return []
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    return [SampleMonitors.model_validate_json(x) for x in complete.splitlines() if x.strip()]


class TokenMonitorLog:
    """Appends `SampleMonitors` lines; on resume, drops lines past the checkpoint's step."""

    def __init__(self, output_dir: Path, resumed_step: int) -> None:
        self.path = Path(output_dir) / MONITORS_FILE
        kept = [m for m in read_token_monitors(output_dir) if m.step <= resumed_step]
        if self.path.exists():
            write_text_atomic(self.path, "".join(m.model_dump_json() + "\n" for m in kept))

    def write(self, records: Iterable[SampleMonitors]) -> None:
        lines = "".join(r.model_dump_json() + "\n" for r in records)
        if lines:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(lines)
