"""OPD per-token monitors for the viewer: `distill/token_monitors.jsonl`, read once, by sample."""

from __future__ import annotations

from pathlib import Path

from longhorizon.distill.monitors import SampleMonitors, read_token_monitors

__all__ = ["MonitorIndex"]


class MonitorIndex:
    """(trajectory id, sequence) -> the monitors of that trained sequence."""

    def __init__(self, distill_dir: Path) -> None:
        self.dir = distill_dir
        self._by_sample: dict[tuple[str, int], SampleMonitors] | None = None

    def get(self, trajectory_id: str, sequence: int) -> SampleMonitors | None:
        if self._by_sample is None:
            records = read_token_monitors(self.dir)
            self._by_sample = {(m.trajectory_id, m.sequence): m for m in records}
        return self._by_sample.get((trajectory_id, sequence))
