"""Lists of trajectories over one or many stores: filters, paging, lazy parsing.

A page with no filter is located by line offsets (`lines.Shard`) and only its lines are
parsed. A filtered page parses lines in store order until it has the page (plus one row, to
know that a next page exists), caching each line's summary, so later pages and other filters
reuse the work: the index is built once, on demand, as far as it was needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longhorizon.viewer.discover import StoreInfo
from longhorizon.viewer.lines import Shard

__all__ = ["Filters", "Page", "Row", "StoreIndex", "TrajectoryLists", "row_of"]

SHARD_GLOB = "part-*.jsonl"


@dataclass(frozen=True)
class Row:
    """A trajectory's summary: what the list shows and filters on."""

    store: str
    at: str  # "shard:line", a direct address for the episode page
    id: str
    task_id: str
    domain: str
    status: str
    verdict: str  # pass, fail, or none (no verifier ran)
    failed: tuple[str, ...]  # verifiers that did not pass
    reason: str | None
    turns: int
    tools: int
    tokens: int  # completion tokens
    discarded: int  # rolled-back model calls


def row_of(store: str, at: str, record: dict[str, Any]) -> Row:
    verdicts = record.get("verdicts") or []
    usage = record.get("usage") or {}
    failed = tuple(v["verifier"] for v in verdicts if not v.get("passed"))
    verdict = "none" if not verdicts else ("fail" if failed else "pass")
    return Row(
        store=store,
        at=at,
        id=record["id"],
        task_id=record.get("task_id", ""),
        domain=record.get("domain", ""),
        status=record.get("status", ""),
        verdict=verdict,
        failed=failed,
        reason=record.get("status_reason"),
        turns=int(usage.get("model_calls", 0)),
        tools=int(usage.get("tool_calls", 0)),
        tokens=int(usage.get("completion_tokens", 0)),
        discarded=sum(1 for c in record.get("calls") or [] if c.get("discarded")),
    )


@dataclass(frozen=True)
class Filters:
    domain: str = ""
    status: str = ""
    verdict: str = ""
    reason: str = ""  # a substring of the status reason or of a failed verifier's name
    min_turns: int | None = None
    max_turns: int | None = None
    min_tools: int | None = None
    max_tools: int | None = None

    def active(self) -> bool:
        return any(v not in ("", None) for v in self.__dict__.values())

    def keep(self, row: Row) -> bool:
        if self.domain and row.domain != self.domain:
            return False
        if self.status and row.status != self.status:
            return False
        if self.verdict and row.verdict != self.verdict:
            return False
        if self.reason and not _mentions(row, self.reason):
            return False
        return _within(row.turns, self.min_turns, self.max_turns) and _within(
            row.tools, self.min_tools, self.max_tools
        )


def _mentions(row: Row, text: str) -> bool:
    needle = text.lower()
    return needle in (row.reason or "").lower() or any(needle in f.lower() for f in row.failed)


def _within(value: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


@dataclass
class StoreIndex:
    """One store's shards and the summaries parsed so far (keyed by shard and line)."""

    info: StoreInfo
    root: Path
    shards: dict[str, Shard] = field(default_factory=dict)
    rows: dict[tuple[str, int], Row] = field(default_factory=dict)

    def refresh(self) -> list[Shard]:
        """The current shards in name order (new shards of a live run are picked up)."""
        for path in sorted(self.root.glob(SHARD_GLOB)):
            self.shards.setdefault(path.name, Shard(path))
        return [self.shards[name] for name in sorted(self.shards)]

    def count(self) -> int:
        return sum(s.count() for s in self.refresh())

    def row(self, shard: Shard, line: int, raw: bytes | None = None) -> Row:
        key = (shard.path.name, line)
        if key not in self.rows:
            text = raw if raw is not None else shard.lines(line, line + 1)[0]
            self.rows[key] = row_of(self.info.ref, f"{shard.path.name}:{line}", json.loads(text))
        return self.rows[key]

    def scan(self, batch: int = 64) -> Iterator[Row]:
        """Every row in store order, parsing only lines not parsed before."""
        for shard in self.refresh():
            n = shard.count()
            for lo in range(0, n, batch):
                hi = min(lo + batch, n)
                missing = [i for i in range(lo, hi) if (shard.path.name, i) not in self.rows]
                raws = shard.lines(lo, hi) if missing else []
                for i in range(lo, hi):
                    yield self.row(shard, i, raws[i - lo] if raws else None)

    def lines_of(self, shard: Shard, lo: int, hi: int) -> list[Row]:
        """Rows lo..hi-1 of one shard, parsing only lines not parsed before."""
        raws = shard.lines(lo, hi)
        return [self.row(shard, lo + j, raw) for j, raw in enumerate(raws)]

    def record(self, at: str, trajectory_id: str) -> bytes | None:
        """The stored line of a trajectory: by its address when it matches, else by a search."""
        name, _, line = at.partition(":")
        shard = self.shards.get(name) if line.isdigit() else None
        if shard is None and name:
            self.refresh()
            shard = self.shards.get(name)
        if shard is not None and line.isdigit():
            raws = shard.lines(int(line), int(line) + 1)
            if raws and json.loads(raws[0]).get("id") == trajectory_id:
                return raws[0]
        return self._search(trajectory_id)

    def _search(self, trajectory_id: str) -> bytes | None:
        needle = b'"id":' + json.dumps(trajectory_id).encode()
        for shard in self.refresh():
            shard.refresh()
            data = shard.path.read_bytes()
            hit = data.find(needle)
            while hit >= 0:
                start = data.rfind(b"\n", 0, hit) + 1
                end = data.find(b"\n", hit)
                if end > 0 and json.loads(data[start:end]).get("id") == trajectory_id:
                    return data[start:end]
                hit = data.find(needle, hit + 1)
        return None


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    offset: int
    limit: int
    has_next: bool
    total: int | None  # exact: every line was counted (or every filtered line parsed)
    estimate: int | None = None  # when shards past the page were not read: from their bytes


class TrajectoryLists:
    """The lazy indexes of every trajectory store of a run, kept for the server's lifetime."""

    def __init__(self, root: Path, stores: list[StoreInfo]) -> None:
        self.indexes = {s.ref: StoreIndex(s, root / s.ref) for s in stores}

    def page(self, refs: list[str], filters: Filters, offset: int, limit: int) -> Page:
        chosen = [self.indexes[r] for r in refs if r in self.indexes]
        if not filters.active():
            return self._plain(chosen, offset, limit)
        found: list[Row] = []
        for index in chosen:
            for row in index.scan():
                if filters.keep(row):
                    found.append(row)
                    if len(found) > offset + limit:
                        return Page(found[offset : offset + limit], offset, limit, True, None)
        return Page(found[offset:], offset, limit, False, len(found))

    @staticmethod
    def _plain(chosen: list[StoreIndex], offset: int, limit: int) -> Page:
        """Shards are counted (newlines only) up to the page; those after it are not read at
        all, and the total is then estimated from their size (a 100K store: ~1.5 GB)."""
        rows: list[Row] = []
        seen, counted_bytes, unread_bytes = 0, 0, 0
        for index in chosen:
            for shard in index.refresh():
                if len(rows) > limit:  # the page and one more row: enough to know "next"
                    known = shard.known_count()  # counted by an earlier page or filter
                    if known is None:
                        unread_bytes += shard.path.stat().st_size
                    else:
                        seen += known
                    continue
                counted_bytes += shard.path.stat().st_size
                n = shard.count()
                if offset < seen + n:
                    lo = max(0, offset - seen)
                    rows.extend(index.lines_of(shard, lo, lo + limit + 1 - len(rows)))
                seen += n
        page_rows, has_next = rows[:limit], len(rows) > limit
        if not unread_bytes:
            return Page(page_rows, offset, limit, has_next, seen)
        estimate = seen + round(unread_bytes * seen / max(counted_bytes, 1))
        return Page(page_rows, offset, limit, has_next, None, estimate)
