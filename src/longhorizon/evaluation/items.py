"""The per-seed items file (`items-seed<k>.jsonl`): append-only, resumable, crash-tolerant.

One `ItemResult` per line, each line written with one `write` and fsynced per batch. A kill
mid-write leaves at most a torn last line: readers ignore it and the next writer cuts it off
before appending. A later line for the same item replaces an earlier one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from longhorizon.evaluation.types import ItemResult


def items_path(bench_dir: Path, seed: int) -> Path:
    return bench_dir / f"items-seed{seed}.jsonl"


def seed_of(path: Path) -> int:
    return int(path.stem.removeprefix("items-seed"))


def read_items(path: Path) -> dict[str, ItemResult]:
    """Item id -> result, in file order; a missing file is empty."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]  # a line without "\n" is torn
    results: dict[str, ItemResult] = {}
    for line in complete.splitlines():
        if line.strip():
            result = ItemResult.from_json(line)
            results[result.item_id] = result
    return results


def read_seeds(bench_dir: Path) -> dict[int, dict[str, ItemResult]]:
    """Every seed's items under a bench directory, by seed."""
    paths = sorted(bench_dir.glob("items-seed*.jsonl"), key=seed_of)
    return {seed_of(p): read_items(p) for p in paths}


def append_items(path: Path, results: Iterable[ItemResult]) -> None:
    lines = b"".join(r.to_json().encode() + b"\n" for r in results)
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _cut_torn_tail(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, lines)
        os.fsync(fd)
    finally:
        os.close(fd)


def _cut_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    with open(path, "rb+") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            f.truncate(end)
