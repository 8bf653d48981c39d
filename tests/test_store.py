"""TrajectoryStore: append-only, torn-tail repair, no duplicates after SIGKILL, exports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from longhorizon.core import TrajectoryStore
from longhorizon.core.store import StoreError
from tests.test_core_types import make_trajectory


def traj(i: int):  # type: ignore[no-untyped-def]
    return make_trajectory().model_copy(update={"id": f"t{i}", "task_id": f"q{i}"})


def test_add_skips_duplicates_and_reopens(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path, shard_size=2) as store:
        assert store.add(traj(0)) is True
        assert store.add(traj(0)) is False
        assert store.extend([traj(1), traj(2)]) == 2
    reopened = TrajectoryStore(tmp_path)
    assert sorted(reopened.ids()) == ["t0", "t1", "t2"]
    assert len(list(tmp_path.glob("part-*.jsonl"))) == 2  # rotated after 2 records
    assert next(iter(reopened)) == traj(0)


def test_torn_tail_is_ignored_then_cut(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path) as store:
        store.add(traj(0))
    shard = next(tmp_path.glob("part-*.jsonl"))
    with open(shard, "ab") as f:
        f.write(b'{"id": "t1", "task_')  # a write cut short by a kill
    store = TrajectoryStore(tmp_path)
    assert store.ids() == {"t0"}
    assert shard.read_bytes().endswith(b"}\n")


def test_corrupt_complete_line_names_file_and_line(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path) as store:
        store.add(traj(0))
    shard = next(tmp_path.glob("part-*.jsonl"))
    with open(shard, "ab") as f:
        f.write(b'{"id": "broken"}\n')
    with pytest.raises(StoreError, match=r"part-.*\.jsonl:2: not a valid Trajectory"):
        TrajectoryStore(tmp_path)


WRITER = textwrap.dedent(
    """
    import sys, time
    from longhorizon.core import TrajectoryStore
    from tests.test_core_types import make_trajectory
    store = TrajectoryStore(sys.argv[1])
    for i in range(100000):
        t = make_trajectory().model_copy(update={"id": f"t{i}"})
        if store.add(t):
            print(i, flush=True)
    """
)


def test_sigkill_loses_no_finished_record_and_resume_duplicates_none(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, cwd=root
    )
    assert proc.stdout is not None
    reported = [proc.stdout.readline() for _ in range(30)]  # 30 records acknowledged as written
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acknowledged = {f"t{int(line)}" for line in reported}
    store = TrajectoryStore(tmp_path)
    assert acknowledged <= store.ids()
    before = len(store)
    assert sum(store.add(traj(i)) for i in range(before + 5)) == 5  # only new ids get written
    lines = sum(len(p.read_bytes().splitlines()) for p in tmp_path.glob("part-*.jsonl"))
    assert lines == before + 5


def test_parquet_and_dataset_export(tmp_path: Path) -> None:
    with TrajectoryStore(tmp_path / "s") as store:
        store.extend([traj(0), traj(1)])
    path = store.to_parquet(tmp_path / "out" / "t.parquet")
    import datasets

    ds = datasets.Dataset.from_parquet(str(path))
    assert ds.num_rows == 2
    assert ds[0]["input_ids"] == [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
    assert ds[0]["loss_mask"] == [[0, 0, 0, 1, 1, 0, 0, 1, 1, 1]]
    assert ds[1]["domain"] == "search" and ds[1]["passed"] is True
    assert store.to_dataset()["id"] == ["t0", "t1"]
    assert not list((tmp_path / "out").glob("*.tmp-*"))
