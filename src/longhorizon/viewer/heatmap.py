"""The OPD heatmap: per-token reverse KL (or 1 - coverage) over a rollout's sequence, with the
teacher's and the student's top-k at each trained token."""

from __future__ import annotations

import math
from dataclasses import dataclass

from longhorizon.core import Trajectory
from longhorizon.distill.monitors import SampleMonitors
from longhorizon.viewer.tokens import Decoder, SequenceView

__all__ = ["HeatCell", "heat_cells"]


@dataclass(frozen=True)
class HeatCell:
    pos: int
    id: int
    text: str
    value: float | None  # the coloured quantity; None where the loss did not train
    alpha: float  # colour intensity in [0, 1] (value / the sequence's largest value)
    kl: float | None
    coverage: float | None
    teacher: str  # "text p; text p; ..." (top-k, probabilities)
    student: str


def _topk(pairs: list[tuple[int, float]], decode: Decoder) -> str:
    return "; ".join(f"{decode(i)!r} {math.exp(lp):.3g}" for i, lp in pairs)


def heat_cells(
    view: SequenceView,
    traj: Trajectory,
    monitors: SampleMonitors,
    decode: Decoder,
    color: str = "kl",
) -> list[HeatCell]:
    at = {p: j for j, p in enumerate(monitors.positions)}
    values: dict[int, float] = {}
    for p, i in at.items():
        if color == "coverage" and monitors.coverage is not None:
            values[p] = 1.0 - monitors.coverage[i]
        else:
            values[p] = monitors.kl[i]
    top = max(values.values(), default=0.0) or 1.0
    cells = []
    for c in view.cells:
        j = at.get(c.pos)
        teacher = ""
        if j is not None:
            pairs = zip(monitors.teacher_top_ids[j], monitors.teacher_top_logprobs[j], strict=True)
            teacher = _topk(list(pairs), decode)
        student = ""
        call = traj.calls[c.call]
        if c.generated and call.top_logprobs and c.offset < len(call.top_logprobs):
            student = _topk([(t.token_id, t.logprob) for t in call.top_logprobs[c.offset]], decode)
        value = values.get(c.pos)
        cells.append(
            HeatCell(
                pos=c.pos,
                id=c.id,
                text=c.text,
                value=value,
                alpha=0.0 if value is None else max(0.0, min(1.0, value / top)),
                kl=None if j is None else monitors.kl[j],
                coverage=None if j is None or monitors.coverage is None else monitors.coverage[j],
                teacher=teacher,
                student=student,
            )
        )
    return cells
