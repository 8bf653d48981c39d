"""Synthesis as the viewer shows it: tasks with status and reason, KAG provenance, attempts.

Read straight from the domain's `kag.db` (SQLite), opened read-only so that viewing never
writes into a run (the KAG store's own `connect` creates the schema and switches to WAL).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core import Task

__all__ = ["Attempt", "SynthTask", "TaskRow", "list_tasks", "synth_task"]


def _open(db: Path) -> sqlite3.Connection:
    """Read-only, creating no file: a database its writer closed (no -wal file) is opened as
    immutable (SQLite would otherwise create -wal and -shm files even for a read-only
    connection); one being written has them already and is read through them."""
    live = db.with_name(db.name + "-wal").exists()
    return sqlite3.connect(f"{db.as_uri()}?{'mode=ro' if live else 'immutable=1'}", uri=True)


@dataclass(frozen=True)
class TaskRow:
    id: str
    status: str
    reason: str | None
    attempts: int
    instruction: str


@dataclass(frozen=True)
class Attempt:
    """A solver or no-tool attempt written back to the graph (failed ones included)."""

    id: str
    role: str
    status: str
    passed: bool
    summary: dict[str, Any]
    actions: list[dict[str, Any]]


@dataclass(frozen=True)
class SynthTask:
    task: Task
    status: str
    reason: str | None
    attempts_made: int
    walk: list[str]
    relations: list[str]
    evidence: list[dict[str, Any]]  # id, type, label, text (or the payload; truncated)
    attempts: list[Attempt]


def list_tasks(
    db: Path, domain: str, status: str, reason: str, offset: int, limit: int
) -> tuple[list[TaskRow], int]:
    """A page of the domain's tasks (accepted and rejected) and the filtered total."""
    where, params = "domain = ?", [domain]
    if status:
        where, params = where + " AND status = ?", [*params, status]
    if reason:
        where, params = where + " AND reason LIKE ?", [*params, f"%{reason}%"]
    with _open(db) as conn:
        (total,) = conn.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params).fetchone()
        rows = conn.execute(
            f"SELECT id, status, reason, attempts, payload FROM tasks WHERE {where} "
            "ORDER BY id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
    return [
        TaskRow(r[0], r[1], r[2], r[3], json.loads(r[4]).get("instruction", "")) for r in rows
    ], total


def reasons(db: Path, domain: str) -> list[tuple[str, int]]:
    """Rejection reasons (each rule separately) with their counts."""
    counts: dict[str, int] = {}
    with _open(db) as conn:
        for (text,) in conn.execute(
            "SELECT reason FROM tasks WHERE domain = ? AND reason IS NOT NULL", (domain,)
        ):
            for part in str(text).split("; "):
                key = part.split(":")[0]
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: -kv[1])


def _evidence(conn: sqlite3.Connection, ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for node_id in ids:
        row = conn.execute(
            "SELECT id, type, label, payload FROM nodes WHERE id = ?", (node_id,)
        ).fetchone()
        if row is None:
            out.append({"id": node_id, "type": "?", "label": "(not in the graph)", "text": ""})
            continue
        payload = json.loads(row[3])
        text = payload.get("text") or ", ".join(f"{k}: {v}" for k, v in payload.items())
        out.append({"id": row[0], "type": row[1], "label": row[2], "text": str(text)[:400]})
    return out


def _attempts(conn: sqlite3.Connection, task_id: str) -> list[Attempt]:
    attempts = []
    rows = conn.execute(
        "SELECT id, role, status, passed, payload FROM trajectories WHERE task_id = ? "
        "ORDER BY role, id",
        (task_id,),
    ).fetchall()
    for tid, role, status, passed, payload in rows:
        actions = [
            {
                "step": a[0],
                "action": json.loads(a[1]),
                "observation": a[2],
                "verdict": json.loads(a[3]) if a[3] else None,
                "error": a[4],
            }
            for a in conn.execute(
                "SELECT step, action, observation, verdict, error FROM actions "
                "WHERE trajectory_id = ? ORDER BY step",
                (tid,),
            )
        ]
        attempts.append(Attempt(tid, role, status, bool(passed), json.loads(payload), actions))
    return attempts


def synth_task(db: Path, task_id: str) -> SynthTask | None:
    with _open(db) as conn:
        row = conn.execute(
            "SELECT payload, status, reason, attempts FROM tasks WHERE id = ?", (task_id,)
        ).fetchone()
        if row is None:
            return None
        task = Task.model_validate_json(row[0])
        extra = task.provenance.extra
        return SynthTask(
            task=task,
            status=row[1],
            reason=row[2],
            attempts_made=row[3],
            walk=[str(p) for p in extra.get("walk", [])],
            relations=[str(r) for r in extra.get("relations", [])],
            evidence=_evidence(conn, task.evidence),
            attempts=_attempts(conn, task_id),
        )
