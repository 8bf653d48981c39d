"""Append-only JSONL shards: crash-safe, resumable, exportable to Parquet and `datasets`.

Each record is one line written with a single `write`, so a SIGKILL leaves at most one torn
line at the end of a shard (a written line is in the OS page cache and survives the process);
readers ignore a torn line and the next writer cuts it off. fsync guards against a machine
crash: at most every `fsync_every_s` seconds (0: after every record) and on close. A record
whose id is already stored is skipped, so rerunning a job after a kill duplicates nothing.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory

T = TypeVar("T", bound=BaseModel)
SHARD_GLOB = "part-*.jsonl"


class StoreError(RuntimeError):
    """A stored line that is not a valid record (not a torn tail): names the file and line."""


class JsonlStore(Generic[T]):
    """A directory of JSONL shards holding pydantic records keyed by their `id`."""

    def __init__(
        self,
        root: str | Path,
        model: type[T],
        *,
        shard_size: int = 1000,
        fsync_every_s: float = 1.0,
        summary: Callable[[T], dict[str, Any]] | None = None,
    ) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.shard_size = shard_size
        self.fsync_every_s = fsync_every_s
        self._last_fsync = 0.0
        self._summary = summary or (lambda record: {})
        self._writer = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._fd: int | None = None
        self._shard_index = 0
        self._in_shard = 0
        self._repair_torn_tails()
        self._ids = {self._key(r) for r in self}

    # ---- reading -------------------------------------------------------------------------
    def shards(self) -> list[Path]:
        return sorted(self.root.glob(SHARD_GLOB))

    def __iter__(self) -> Iterator[T]:
        for shard in self.shards():
            yield from self._read_shard(shard)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._ids

    def ids(self) -> set[str]:
        return set(self._ids)

    def _read_shard(self, shard: Path) -> Iterator[T]:
        data = shard.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line without "\n" is torn or in flight
        for lineno, line in enumerate(complete.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                yield self.model.model_validate_json(line)
            except ValidationError as exc:
                raise StoreError(f"{shard}:{lineno}: not a valid {self.model.__name__}") from exc

    @staticmethod
    def _key(record: BaseModel) -> str:
        return str(record.id)  # type: ignore[attr-defined]

    # ---- writing -------------------------------------------------------------------------
    def add(self, record: T) -> bool:
        """Append `record`; returns False (and writes nothing) if its id is already stored."""
        key = self._key(record)
        if key in self._ids:
            return False
        line = record.model_dump_json().encode() + b"\n"
        fd = self._shard_fd()
        os.write(fd, line)
        if time.monotonic() - self._last_fsync >= self.fsync_every_s:
            os.fsync(fd)
            self._last_fsync = time.monotonic()
        self._ids.add(key)
        self._in_shard += 1
        return True

    def extend(self, records: list[T]) -> int:
        return sum(self.add(r) for r in records)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)  # closing the fd releases its flock
            self._fd = None

    def __enter__(self) -> JsonlStore[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _shard_fd(self) -> int:
        if self._fd is not None and self._in_shard < self.shard_size:
            return self._fd
        self.close()
        path = self.root / f"part-{self._writer}-{self._shard_index:05d}.jsonl"
        self._shard_index += 1
        self._in_shard = 0
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # marks the shard as live for other processes
        return self._fd

    def _repair_torn_tails(self) -> None:
        """Cut the torn last line of shards no live writer holds (left by a killed process)."""
        for shard in self.shards():
            with open(shard, "rb+") as f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                data = f.read()
                end = data.rfind(b"\n") + 1
                if end != len(data):
                    f.truncate(end)
                    f.flush()
                    os.fsync(f.fileno())

    # ---- export --------------------------------------------------------------------------
    def rows(self) -> Iterator[dict[str, Any]]:
        """Flat rows: summary columns plus the whole record as JSON."""
        for record in self:
            yield {
                "id": self._key(record),
                **self._summary(record),
                "json": record.model_dump_json(),
            }

    def to_parquet(self, path: str | Path) -> Path:
        """Write all records to one Parquet file atomically (temp file, then rename)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(list(self.rows()))
        tmp = path.with_suffix(path.suffix + f".tmp-{os.getpid()}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        return path

    def to_dataset(self) -> Any:
        """The records as a `datasets.Dataset` (same columns as the Parquet export)."""
        import datasets

        return datasets.Dataset.from_list(list(self.rows()))


def trajectory_summary(traj: Trajectory) -> dict[str, Any]:
    sequences = traj.token_sequences()
    return {
        "task_id": traj.task_id,
        "domain": traj.domain,
        "status": traj.status.value,
        "passed": traj.passed,
        "final_answer": traj.final_answer,
        "num_steps": len(traj.steps),
        "num_calls": len(traj.calls),
        "model": traj.provenance.model,
        "input_ids": [s.input_ids for s in sequences],
        "loss_mask": [s.loss_mask for s in sequences],
    }


def task_summary(task: Task) -> dict[str, Any]:
    return {"domain": task.domain, "instruction": task.instruction, "answer": task.answer}


class TrajectoryStore(JsonlStore[Trajectory]):
    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(root, Trajectory, summary=trajectory_summary, **kwargs)


class TaskStore(JsonlStore[Task]):
    def __init__(self, root: str | Path, **kwargs: Any) -> None:
        super().__init__(root, Task, summary=task_summary, **kwargs)


def read_task_pool(roots: Sequence[str | Path]) -> list[Task]:
    """Every task of the stores `roots`, for a trainer's prompts: a store that does not exist
    (a mistyped path would otherwise become a new, empty store) or none with a task is an
    error before any model loads."""
    missing = [str(r) for r in roots if not Path(r).is_dir()]
    if missing:
        raise StoreError(f"task store(s) {missing} do not exist")
    tasks = [t for root in roots for t in TaskStore(root)]
    if not tasks:
        raise StoreError(f"no tasks in {[str(r) for r in roots]}")
    return tasks
