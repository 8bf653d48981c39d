"""A throwaway PostgreSQL server for the tests: Debian's binaries, a temp dir, a loopback port.

initdb and postgres refuse to run as root, so under root both run as the `postgres` user
(Debian's package creates it) in a folder that user owns. The server listens on 127.0.0.1 at
a free port with its unix socket in the same folder, trusts local connections, and skips
fsync (nothing here survives the session). initdb runs under the C locale, as in a bare
container, so the cluster's encoding is SQL_ASCII: the harder case for a client (the KAG must
still round-trip non-ASCII text). `PostgresServer.database()` makes an empty
database and returns its DSN.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

__all__ = ["PostgresServer", "PostgresUnavailable", "find_bin"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (or no unprivileged user to run them as root)."""


def find_bin() -> Path:
    """The folder holding initdb and postgres: PATH first, then Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    versions = glob.glob("/usr/lib/postgresql/*/bin/postgres")
    if versions:  # Debian does not put the server binaries on PATH
        newest = max(versions, key=lambda p: int(Path(p).parts[-3]))
        return Path(newest).parent
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, postgres) on PATH or in /usr/lib/postgresql: "
        "run scripts/install.sh (apt-get install postgresql)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One initdb'd cluster and its postgres process; a context manager that stops both."""

    def __init__(self) -> None:
        self.bin = find_bin()
        self.user = self._run_as()
        self.root = Path(tempfile.mkdtemp(prefix="longhorizon-pg-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._names = itertools.count()

    def __enter__(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def database(self, prefix: str = "kag") -> str:
        """A new, empty database; its DSN."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.dsn(), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: roll back, close, exit
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _run_as(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres").pw_name
        except KeyError:
            raise PostgresUnavailable("running as root and no `postgres` user to run as") from None

    def _start(self) -> None:
        data = self.root / "data"
        if self.user is not None:
            os.chown(self.root, pwd.getpwnam(self.user).pw_uid, -1)
        self._call(["initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"])
        server = ["postgres", "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port)]
        server += ["-k", str(self.root), "-c", "fsync=off", "-c", "full_page_writes=off"]
        log = (self.root / "server.log").open("wb")
        self.proc = subprocess.Popen(self._argv(server), stdout=log, stderr=log, **self._as())
        self._wait_ready(log.name)

    def _wait_ready(self, log: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {Path(log).read_text()[-2000:]}")
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready in {timeout:.0f} s")
            time.sleep(0.1)

    def _call(self, argv: list[str]) -> None:
        done = subprocess.run(self._argv(argv), capture_output=True, text=True, **self._as())
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def _argv(self, argv: list[str]) -> list[str]:
        return [str(self.bin / argv[0]), *argv[1:]]

    def _as(self) -> dict[str, Any]:
        # the server's own locale and temp dir: C (byte order, like SQLite), our folder
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TMPDIR": str(self.root)}
        if self.user is None:
            return {"env": env, "cwd": self.root}
        user = pwd.getpwnam(self.user)
        return {
            "env": env,
            "cwd": self.root,
            "user": user.pw_uid,
            "group": user.pw_gid,
            "extra_groups": [],
        }
