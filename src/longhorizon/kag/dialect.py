"""The two SQL back ends: SQLite (default, stdlib) and PostgreSQL (multi-machine synthesis).

The schema and queries are written once in portable SQL with `?` placeholders; PostgreSQL's
driver wants `%s`, so statements are rewritten for it. Upserts use `ON CONFLICT`, which both
support.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS nodes (
        id TEXT PRIMARY KEY, domain TEXT NOT NULL, type TEXT NOT NULL,
        label TEXT NOT NULL, payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS edges (
        src TEXT NOT NULL, dst TEXT NOT NULL, type TEXT NOT NULL, domain TEXT NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (src, dst, type))""",
    """CREATE TABLE IF NOT EXISTS actions (
        id TEXT PRIMARY KEY, trajectory_id TEXT NOT NULL, task_id TEXT NOT NULL,
        domain TEXT NOT NULL, step INTEGER NOT NULL, state_refs TEXT NOT NULL,
        action TEXT NOT NULL, observation TEXT NOT NULL, verdict TEXT, error TEXT)""",
    """CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY, domain TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
        attempts INTEGER NOT NULL, payload TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trajectories (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL, domain TEXT NOT NULL, role TEXT NOT NULL,
        status TEXT NOT NULL, passed INTEGER NOT NULL, payload TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS nodes_domain_type ON nodes (domain, type)",
    "CREATE INDEX IF NOT EXISTS edges_src_type ON edges (src, type)",
    "CREATE INDEX IF NOT EXISTS actions_trajectory ON actions (trajectory_id)",
    "CREATE INDEX IF NOT EXISTS tasks_status ON tasks (domain, status)",
]


@dataclass
class Connection:
    """A DB-API connection plus the placeholder style its driver wants."""

    raw: Any
    placeholder: str

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.raw.cursor()
        cursor.execute(self._sql(sql), params)
        rows = cursor.fetchall() if cursor.description else []
        cursor.close()
        return rows

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.raw.cursor()
        cursor.executemany(self._sql(sql), rows)
        cursor.close()

    def commit(self) -> None:
        self.raw.commit()

    def close(self) -> None:
        self.raw.close()

    def _sql(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)


def connect(dsn: str | Path) -> Connection:
    """`postgresql://...` opens PostgreSQL (needs psycopg); anything else is a SQLite file."""
    text = str(dsn)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg  # type: ignore[import-not-found]
        except ImportError as exc:
            raise RuntimeError("a PostgreSQL DSN needs `pip install psycopg[binary]`") from exc
        conn = Connection(psycopg.connect(text), "%s")
    else:
        Path(text).parent.mkdir(parents=True, exist_ok=True)
        raw = sqlite3.connect(text, timeout=60.0, isolation_level=None)
        raw.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        raw.execute("PRAGMA synchronous=NORMAL")
        raw.execute("PRAGMA busy_timeout=60000")  # several worker processes share one file
        raw.isolation_level = "DEFERRED"
        conn = Connection(raw, "?")
    for statement in SCHEMA:
        conn.execute(statement)
    conn.commit()
    return conn
