"""Line offsets of a JSONL shard, found without parsing: the basis of lazy paging.

A store of 100K trajectories is gigabytes of JSON; parsing all of it takes minutes on 2
cores, while finding its newlines (numpy over the bytes) takes a fraction of a second per
GB. So a page is found by offsets and only the lines on it are parsed. Only complete lines
count: a last line without "\\n" is torn or still being written (see core/store.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Shard"]

CHUNK = 64 << 20


@dataclass
class Shard:
    """One shard file and, once `count()` ran, the byte span of each complete line."""

    path: Path
    size: int = -1  # the file size the offsets were computed at
    starts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _counted: tuple[int, int] = (-1, 0)  # (file size, complete lines) of the last plain count

    def refresh(self) -> None:
        """Find the newlines appended since the last call (an append-only store may grow)."""
        size = os.stat(self.path).st_size
        if size == self.size:
            return
        if size < self.size:  # rewritten (a torn tail cut): start over
            self.size, self.ends = -1, np.zeros(0, np.int64)
        done = int(self.ends[-1]) + 1 if self.ends.shape[0] else 0
        found = [self.ends]
        with open(self.path, "rb") as f:
            f.seek(done)
            while chunk := f.read(CHUNK):  # bounded memory for GB-sized shards
                found.append(np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10) + done)
                done += len(chunk)
        self.ends = np.concatenate(found).astype(np.int64)
        self.starts = np.concatenate([[0], self.ends[:-1] + 1]).astype(np.int64)
        self.size = size

    def count(self) -> int:
        """Complete lines; without building offsets when they are not needed (bytes.count
        over the file is several times faster than locating every newline)."""
        size = os.stat(self.path).st_size
        if size == self.size:
            return int(self.ends.shape[0])
        if self._counted[0] != size:
            total = 0
            with open(self.path, "rb") as f:
                read = 0
                while read < size and (chunk := f.read(min(CHUNK, size - read))):
                    total += chunk.count(b"\n")
                    read += len(chunk)
            self._counted = (size, total)
        return self._counted[1]

    def known_count(self) -> int | None:
        """The line count if an earlier pass counted the file at its current size, else None."""
        size = os.stat(self.path).st_size
        if size == self.size:
            return int(self.ends.shape[0])
        return self._counted[1] if self._counted[0] == size else None

    def lines(self, lo: int, hi: int) -> list[bytes]:
        """Lines lo..hi-1 (complete ones only), read with one seek."""
        self.refresh()
        hi = min(hi, int(self.ends.shape[0]))
        if lo >= hi:
            return []
        with open(self.path, "rb") as f:
            f.seek(int(self.starts[lo]))
            blob = f.read(int(self.ends[hi - 1] - self.starts[lo]) + 1)
        base = int(self.starts[lo])
        return [
            blob[int(s) - base : int(e) - base]
            for s, e in zip(self.starts[lo:hi], self.ends[lo:hi], strict=True)
        ]
