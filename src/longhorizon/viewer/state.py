"""What the server knows about its runs: layout, lazy trajectory lists, monitors, tokenizer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from longhorizon.core import Trajectory
from longhorizon.viewer.discover import RunLayout, StoreInfo, discover
from longhorizon.viewer.listing import TrajectoryLists
from longhorizon.viewer.monitors import MonitorIndex
from longhorizon.viewer.paths import RunFiles
from longhorizon.viewer.tokens import Decoder, find_tokenizer

__all__ = ["NotFound", "RunState", "ViewerState"]


class NotFound(LookupError):
    """A store, trajectory or item the run does not hold (the message says which)."""


@dataclass
class RunState:
    name: str
    root: Path
    layout: RunLayout
    lists: TrajectoryLists
    monitors: MonitorIndex
    decoder: Decoder

    @classmethod
    def open(cls, name: str, root: Path, tokenizer: Path | None) -> RunState:
        layout = discover(root)
        return cls(
            name=name,
            root=root,
            layout=layout,
            lists=TrajectoryLists(root, layout.trajectory_stores()),
            monitors=MonitorIndex(root / "distill"),
            decoder=Decoder(find_tokenizer(root, tokenizer)),
        )

    def store(self, ref: str) -> StoreInfo:
        info = self.layout.store(ref)
        if info is None or info.kind != "trajectories":
            raise NotFound(f"no trajectory store {ref!r} in this run")
        return info

    def trajectory(self, ref: str, trajectory_id: str, at: str = "") -> Trajectory:
        self.store(ref)
        raw = self.lists.indexes[ref].record(at, trajectory_id)
        if raw is None:
            raise NotFound(f"no trajectory {trajectory_id!r} in {ref}")
        return Trajectory.model_validate(json.loads(raw))


@dataclass
class ViewerState:
    files: RunFiles
    runs: dict[str, RunState] = field(default_factory=dict)

    @classmethod
    def open(cls, roots: dict[str, Path], tokenizer: Path | None = None) -> ViewerState:
        files = RunFiles(roots)
        runs = {name: RunState.open(name, files.root(name), tokenizer) for name in roots}
        return cls(files, runs)

    def run(self, name: str) -> RunState:
        self.files.root(name)  # OutsideRun for an unknown name
        return self.runs[name]
