"""The two SQL back ends: SQLite (default, stdlib) and PostgreSQL (multi-machine synthesis).

The schema and queries are written once in portable SQL with `?` placeholders (no statement
holds a literal `?` or `%`); psycopg wants `%s`, so statements are rewritten for it. Upserts
use `ON CONFLICT`, which both support; JSON travels as TEXT, so neither needs a JSON type.

Both connections run in autocommit mode and every write goes through `transaction()`: an
explicit BEGIN ... COMMIT, rolled back on an exception and, when the writing process dies, by
the database itself (SQLite ignores the dead writer's uncommitted WAL frames; PostgreSQL rolls
back when the connection drops). Reads never leave a transaction open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

# object name -> the statement that creates it; connect() runs those whose object is missing
SCHEMA = {
    "nodes": """CREATE TABLE nodes (
        id TEXT PRIMARY KEY, domain TEXT NOT NULL, type TEXT NOT NULL,
        label TEXT NOT NULL, payload TEXT NOT NULL)""",
    "edges": """CREATE TABLE edges (
        src TEXT NOT NULL, dst TEXT NOT NULL, type TEXT NOT NULL, domain TEXT NOT NULL,
        payload TEXT NOT NULL, PRIMARY KEY (src, dst, type))""",
    "actions": """CREATE TABLE actions (
        id TEXT PRIMARY KEY, trajectory_id TEXT NOT NULL, task_id TEXT NOT NULL,
        domain TEXT NOT NULL, step INTEGER NOT NULL, state_refs TEXT NOT NULL,
        action TEXT NOT NULL, observation TEXT NOT NULL, verdict TEXT, error TEXT)""",
    "tasks": """CREATE TABLE tasks (
        id TEXT PRIMARY KEY, domain TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
        attempts INTEGER NOT NULL, payload TEXT NOT NULL)""",
    "trajectories": """CREATE TABLE trajectories (
        id TEXT PRIMARY KEY, task_id TEXT NOT NULL, domain TEXT NOT NULL, role TEXT NOT NULL,
        status TEXT NOT NULL, passed INTEGER NOT NULL, payload TEXT NOT NULL)""",
    "nodes_domain_type": "CREATE INDEX nodes_domain_type ON nodes (domain, type)",
    "edges_src_type": "CREATE INDEX edges_src_type ON edges (src, type)",
    "actions_trajectory": "CREATE INDEX actions_trajectory ON actions (trajectory_id)",
    "tasks_status": "CREATE INDEX tasks_status ON tasks (domain, status)",
}


@dataclass(frozen=True)
class Dialect:
    placeholder: str
    begin: str  # how a write transaction starts
    exists: str  # a row with a non-NULL first column when the named table or index exists
    lock_schema: str | None = None  # taken before looking at (and creating) the schema


SQLITE = Dialect(
    "?",
    "BEGIN IMMEDIATE",  # takes the write lock up front: no deadlock upgrading a read lock
    "SELECT name FROM sqlite_master WHERE name = ?",
)
# Several workers connecting at once to a new database, found by the 4-writer test: with
# `CREATE ... IF NOT EXISTS`, two sessions creating one table can fail on a catalogue index,
# and CREATE INDEX takes a SHARE lock on its table even when the index exists, which
# deadlocked against a worker already writing. So the schema is made under an advisory lock
# (any constant key), only what is missing: once it is complete, connecting locks nothing. The
# check reads pg_class under the statement's snapshot; `to_regclass` consults the session's
# catalogue cache, which kept "no such table" after another worker made it (then CREATE TABLE
# failed: 1 writer in 4, in 2 runs out of 3).
POSTGRES = Dialect(
    "%s",
    "BEGIN",
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = ? AND n.nspname = current_schema()",
    "SELECT pg_advisory_xact_lock(4932935)",
)


def is_postgres(dsn: str | Path) -> bool:
    return str(dsn).startswith(("postgresql://", "postgres://"))


@dataclass
class Connection:
    """A DB-API connection in autocommit mode and its dialect."""

    raw: Any
    dialect: Dialect
    depth: int = 0  # open transaction() blocks; inner ones join the outermost

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.raw.cursor()
        cursor.execute(self._sql(sql), params)
        rows = cursor.fetchall() if cursor.description else []
        cursor.close()
        return rows

    def executemany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:  # psycopg rejects an empty batch
            return
        cursor = self.raw.cursor()
        cursor.executemany(self._sql(sql), rows)
        cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all; nested blocks join the outer one."""
        if self.depth:
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
            return
        self.execute(self.dialect.begin)
        self.depth = 1
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        else:
            self.execute("COMMIT")
        finally:
            self.depth = 0

    def close(self) -> None:
        self.raw.close()

    def _sql(self, sql: str) -> str:
        placeholder = self.dialect.placeholder
        return sql if placeholder == "?" else sql.replace("?", placeholder)


class KAGConnectError(ConnectionError):
    """A PostgreSQL KAG that cannot be reached or refuses the connection."""


def connect(dsn: str | Path) -> Connection:
    """`postgresql://...` (or `postgres://`) opens PostgreSQL; anything else is a SQLite file."""
    conn = _postgres(str(dsn)) if is_postgres(dsn) else _sqlite(Path(dsn))
    if _missing(conn):  # once the schema is complete, connecting writes and locks nothing
        with conn.transaction():
            if conn.dialect.lock_schema:
                conn.execute(conn.dialect.lock_schema)
            for name in _missing(conn):  # again: another worker may have made it meanwhile
                conn.execute(SCHEMA[name])
    return conn


def _missing(conn: Connection) -> list[str]:
    """The schema's tables and indexes not in the database, in creation order."""
    found = [conn.execute(conn.dialect.exists, (name,)) for name in SCHEMA]
    return [name for name, rows in zip(SCHEMA, found, strict=True) if not (rows and rows[0][0])]


def _postgres(dsn: str) -> Connection:
    # A cluster made under the C locale (a bare container's default) has the SQL_ASCII
    # encoding; psycopg then refuses non-ASCII parameters and returns text as bytes, unless
    # the client says it speaks UTF-8 (the server stores the bytes as they come).
    try:
        raw = psycopg.connect(dsn, autocommit=True, client_encoding="utf8")
    except psycopg.OperationalError as exc:  # no server there, or it refused us
        raise KAGConnectError(f"cannot connect to the KAG's PostgreSQL: {exc}") from exc
    return Connection(raw, POSTGRES)


def _sqlite(path: Path) -> Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    raw.execute("PRAGMA busy_timeout=60000")  # several worker processes share one file
    raw.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    raw.execute("PRAGMA synchronous=NORMAL")
    return Connection(raw, SQLITE)
