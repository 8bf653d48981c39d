"""Opening a 100K-trajectory store in `longhorizon view`: time to the first page, against loading
the whole store into pandas, in the same run, on the same (page-cached) files.

The store is built from real trajectories: every trajectory store of a run (`--source`, e.g.
`runs/tiny`: synthesis, OPD rollouts, evaluation episodes) replicated with fresh ids to `--n`
records in shards of 1,000, as `TrajectoryStore` writes them. Every file is read once before
timing, so both sides start from the page cache. Each viewer measurement builds a fresh
`ViewerState` (discovery, lazy indexes, templates) and goes through the real Starlette app:

    first page        GET /trajectories?store=S               (no filter: one shard's offsets,
                                                              51 lines parsed, the total
                                                              estimated from the other sizes)
    filtered page     GET /trajectories?store=S&status=...    (parses lines until the page is full)
    deep page         GET /trajectories?store=S&page=n/100    (offsets only, then 50 lines)
    one episode       GET /episode?store=S&id=...             (one line, by its address)
    pandas            pd.read_json(shard, lines=True) for every shard, then pd.concat

    python bench/viewer_load.py --source runs/tiny [--n 100000] [--store DIR]
Prints a table and writes bench/results/viewer_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from rich.console import Console
from rich.table import Table
from starlette.testclient import TestClient

from _common import write_result
from longhorizon.viewer import ViewerState, create_app
from longhorizon.viewer.discover import discover

STORE = "bench/trajectories"
SHARD_SIZE = 1000
ID = re.compile(rb'^(\{"schema_version":\d+,"id":)("(?:[^"\\]|\\.)*")')


def source_lines(source: Path) -> list[bytes]:
    """Every stored trajectory line of the run's trajectory stores."""
    lines: list[bytes] = []
    for info in discover(source).trajectory_stores():
        for shard in sorted((source / info.ref).glob("part-*.jsonl")):
            lines += [x for x in shard.read_bytes().splitlines() if x.strip()]
    if not lines:
        raise SystemExit(f"{source}: no trajectory store found (run `longhorizon run` first)")
    return lines


def build_store(root: Path, lines: list[bytes], n: int) -> Path:
    """n records: the source lines in turn, each with a fresh id (the id is rewritten in place)."""
    store = root / STORE
    store.mkdir(parents=True)
    for lo in range(0, n, SHARD_SIZE):
        out = []
        for i in range(lo, min(n, lo + SHARD_SIZE)):
            line = lines[i % len(lines)]
            new = json.dumps(f"bench-{i:06d}").encode()
            out.append(ID.sub(lambda m, new=new: m.group(1) + new, line, count=1))
        (store / f"part-bench-{lo // SHARD_SIZE:05d}.jsonl").write_bytes(b"\n".join(out) + b"\n")
    return store


def warm(store: Path) -> int:
    """Read every shard once (both sides then start from the page cache); returns bytes."""
    return sum(len(p.read_bytes()) for p in sorted(store.glob("part-*.jsonl")))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def viewer_get(root: Path, url: str) -> tuple[float, str]:
    """A fresh viewer over the run, one request; the seconds include opening the run."""

    def go() -> str:
        client = TestClient(create_app(ViewerState.open({"run": root})))
        response = client.get(url)
        assert response.status_code == 200, response.text[:500]
        return response.text

    return timed(go)


def pandas_load(store: Path) -> tuple[float, int, float]:
    """Seconds and rows of loading the whole store into one DataFrame, and the RSS it added."""
    process = psutil.Process()
    before = process.memory_info().rss
    seconds, frame = timed(
        lambda: pd.concat(
            [pd.read_json(p, lines=True) for p in sorted(store.glob("part-*.jsonl"))],
            ignore_index=True,
        )
    )
    added = (process.memory_info().rss - before) / 2**30
    return seconds, len(frame), added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=Path("runs/tiny"))
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--store", type=Path, help="build the store here (default: a temp dir)")
    args = parser.parse_args()
    root = args.store or Path(tempfile.mkdtemp(prefix="viewer-load-"))
    try:
        run(args.source, args.n, root)
    finally:
        if args.store is None:
            shutil.rmtree(root, ignore_errors=True)


def run(source: Path, n: int, root: Path) -> None:
    lines = source_lines(source)
    build_s, store = timed(lambda: build_store(root, lines, n))
    size = warm(store)
    statuses = [json.loads(x).get("status") for x in lines]
    rare = min(set(statuses), key=statuses.count)  # the rarest status: the filter scans most
    q = f"store={STORE}"
    rows: dict[str, float] = {}
    rows["first page"], page = viewer_get(root, f"/trajectories?{q}")
    shown = re.search(r"1–50 of (about )?(\d+)\s+in 1 store", page)
    assert shown is not None, "the first page does not show rows 1-50"
    rows[f"filtered page (status={rare})"], _ = viewer_get(root, f"/trajectories?{q}&status={rare}")
    middle = max(1, n // 50 // 2)  # a page in the middle of the store
    rows[f"deep page (page {middle})"], _ = viewer_get(root, f"/trajectories?{q}&page={middle}")
    link = re.search(r'href="(/episode\?[^"]+)"', page)
    assert link is not None
    rows["one episode (from the first page)"], _ = viewer_get(
        root, link.group(1).replace("&amp;", "&")
    )
    pandas_s, pandas_rows, pandas_gb = pandas_load(store)
    assert pandas_rows == n
    first = rows["first page"]
    table = Table(title=f"viewer_load: {n:,} trajectories, {size / 2**20:,.0f} MiB of JSONL")
    for column in ("what", "seconds", "pandas / this"):
        table.add_column(column)
    for name, seconds in rows.items():
        table.add_row(name, f"{seconds:.3f}", f"{pandas_s / seconds:.1f}x")
    table.add_row("pandas: whole store", f"{pandas_s:.3f}", "1.0x")
    Console().print(table)
    write_result(
        "viewer_load",
        {
            "n_trajectories": n,
            "store_mib": round(size / 2**20, 1),
            "shards": -(-n // SHARD_SIZE),
            "source": str(source),
            "source_trajectories": len(lines),
            "build_seconds": round(build_s, 2),
            "viewer_seconds": {k: round(v, 4) for k, v in rows.items()},
            "pandas_seconds": round(pandas_s, 3),
            "pandas_rss_added_gib": round(pandas_gb, 2),
            "first_page_speedup_vs_pandas": round(pandas_s / first, 1),
            "first_page_under_2s": first < 2.0,
            "first_page_total_shown": shown.group(0).split(" in ")[0],
            "cpu_count": os.cpu_count(),
        },
    )


if __name__ == "__main__":
    main()
