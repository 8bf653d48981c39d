"""A persistent, isolated Python interpreter per episode: the engine of the `python` tool.

How it works
------------
`PythonSandbox` (parent side, asyncio) starts this very file as a script in a child interpreter
(`python -I -B sandbox.py SPEC`) and talks to it over the child's stdin/stdout with
length-prefixed JSON frames. The child isolates itself (below) before any user code exists,
then serves requests: each one `exec`s code in a single persistent globals dict (so variables
survive between calls), prints the value of a final expression like a notebook cell, and
answers with the captured stdout/stderr and the traceback, if any.

Isolation, applied by the child to itself while it is still root, in this order
-------------------------------------------------------------------------------
1. Namespaces: a new network namespace (no interface is up, loopback included: no TCP/UDP to
   anywhere, no abstract unix sockets of the host), a new IPC namespace, a new mount namespace
   and a new PID namespace whose init is the interpreter (it cannot see or signal a host
   process, and when it dies the kernel kills everything it started).
2. Filesystem, in the private mount namespace: every mount is remounted read-only; /tmp and
   /run are covered by empty read-only tmpfs (hiding host temp files and service sockets);
   /dev/shm by a small private tmpfs; /proc by the PID namespace's own proc; the episode's
   working directory is bind-mounted read-write at /tmp/work, which is the cwd, HOME and
   TMPDIR. The Python installation is re-exposed read-only when it lies below a directory the
   sandbox user may not enter (e.g. /root/.pyenv).
3. Resource limits (setrlimit): CPU seconds over the interpreter's life (RLIMIT_CPU), address
   space per process (RLIMIT_AS), file size (RLIMIT_FSIZE), processes plus threads of the
   sandbox uid (RLIMIT_NPROC), open files, no core dumps.
4. Identity: when the harness is root, a dedicated unprivileged uid/gid derived from the working
   directory (no supplementary groups, so no capabilities, and no_new_privs so setuid binaries
   cannot elevate). It cannot read root-only files (/etc/shadow, 0600 secrets), cannot signal
   the harness, and shares no process-count budget with other episodes' sandboxes.
   Without root, a user namespace stands in for it (see `_enter_user_namespace`) and the code
   keeps the harness's uid: file permissions then protect nothing that uid may read.
5. A scrubbed environment: PATH, HOME, TMPDIR, locale and thread-count hints only.

Per call, the parent enforces a wall-clock timeout by SIGKILLing the child's process group and
the namespace's init (the state is lost; the next call starts a fresh interpreter). Processes a
call starts are killed when it returns: nothing outlives a call. Output is capped per stream
inside the child, and the parent refuses oversized replies, so a huge print cannot grow the
harness's memory.

Linux only. Where a step is impossible (no root and no user namespaces, a container without
CAP_SYS_ADMIN) the sandbox still runs and `PythonSandbox.isolation` says what is missing; the
tool puts a loud warning in every observation. Not covered anywhere: total memory of many
processes (each has its own address-space limit; a cgroup would bound the sum), disk usage of
the working directory beyond the per-file limit, world-readable host files (they stay readable:
/etc/passwd, the Python installation, the project's source), kernel exploits (there is no
seccomp filter). The per-directory uid is a hash: two episodes share one with a chance of about
n**2 / 2e9 for n concurrent episodes (they would then share the process-count budget).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.tools import sandbox_child
from longhorizon.tools.sandbox_protocol import (
    EXIT_CPU,
    FRAME,
    SANDBOX_CWD,
    ChildLimits,
    SandboxProtocolError,
    Spec,
    decode,
    encode,
    reply_limit,
)

__all__ = [
    "SANDBOX_CWD",
    "CellResult",
    "Isolation",
    "PythonSandbox",
    "SandboxConfig",
    "SandboxError",
    "SandboxProtocolError",
]

_CHILD = Path(sandbox_child.__file__).resolve()  # run as a script, never imported there
_UID_BASE, _UID_SPAN = 1_000_000_000, 1_000_000_000  # dedicated uids stay below 2**31
_THREAD_ENV = {
    # numeric libraries start one thread per core; threads count against RLIMIT_NPROC and
    # each glibc arena reserves address space against RLIMIT_AS
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
}


class SandboxConfig(BaseModel):
    """Limits of an episode's python sandbox; `ctx.resources["sandbox_config"]` overrides them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(30.0, gt=0, description="wall-clock limit of one call")
    cpu_s: int = Field(600, gt=0, description="CPU seconds of one interpreter, all calls summed")
    memory_mb: int = Field(1024, gt=0, description="address space of each process (RLIMIT_AS)")
    file_size_mb: int = Field(64, gt=0, description="largest file a process may write")
    max_processes: int = Field(64, gt=0, description="processes plus threads (RLIMIT_NPROC)")
    max_open_files: int = Field(256, gt=0)
    max_output_bytes: int = Field(16_000, gt=0, description="stdout or stderr kept per call")
    shm_mb: int = Field(32, gt=0, description="size of the private /dev/shm")
    uid: int | None = Field(None, gt=0, description="sandbox uid if root; None: one per workdir")
    require_network_isolation: bool = Field(False, description="refuse to run without it")
    startup_timeout_s: float = Field(20.0, gt=0)
    env: dict[str, str] = Field(default_factory=lambda: dict(_THREAD_ENV))


class SandboxError(RuntimeError):
    """The sandbox could not be started (or not with the isolation the config requires)."""


@dataclass(frozen=True)
class Isolation:
    """What the child managed to put in place, as it reported after setting itself up."""

    network: bool
    filesystem: bool
    pid: bool
    uid: int | None
    no_new_privs: bool
    problems: tuple[str, ...] = ()

    @classmethod
    def from_report(cls, report: dict[str, Any]) -> Isolation:
        return cls(
            network=bool(report.get("network")),
            filesystem=bool(report.get("filesystem")),
            pid=bool(report.get("pid")),
            uid=report.get("uid"),
            no_new_privs=bool(report.get("no_new_privs")),
            problems=tuple(str(p) for p in report.get("problems", ())),
        )

    def warnings(self) -> list[str]:
        """Loud lines for every observation, one per missing safeguard."""
        why = "; ".join(p for p in self.problems if "network" in p) or "unknown reason"
        out = []
        if not self.network:
            out.append(
                f"WARNING: network isolation is OFF in this python sandbox ({why}): "
                "code can reach the network."
            )
        if not self.filesystem:
            out.append("WARNING: filesystem isolation is OFF: code can write outside its cwd.")
        if self.uid is None:
            out.append("WARNING: code runs as the harness's own user, not a sandbox user.")
        return out

    def summary(self) -> str:
        parts = [
            f"network={'isolated' if self.network else 'OPEN'}",
            f"filesystem={'read-only except cwd' if self.filesystem else 'OPEN'}",
            f"pid_namespace={self.pid}",
            f"uid={self.uid if self.uid is not None else 'harness'}",
            f"no_new_privs={self.no_new_privs}",
        ]
        return ", ".join(parts)


@dataclass
class CellResult:
    """The outcome of one call: what the code printed and how it ended."""

    status: Literal["ok", "error", "timeout", "crashed"]
    stdout: str = ""
    stderr: str = ""
    traceback: str | None = None  # the user's exception, formatted
    message: str | None = None  # the sandbox's own explanation (timeout, crash)
    stdout_dropped: int = 0  # bytes cut by the output cap
    stderr_dropped: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. "a fresh interpreter was started"
    warnings: list[str] = field(default_factory=list)  # missing isolation

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class PythonSandbox:
    """One episode's interpreter: started lazily, restarted after a timeout or crash.

    Calls are serialised (one interpreter, one globals dict). `aclose()` kills it; the working
    directory and its files stay.
    """

    def __init__(self, workdir: Path | str, config: SandboxConfig | None = None) -> None:
        self.workdir = Path(workdir)
        self.config = config or SandboxConfig()
        self.isolation: Isolation | None = None
        self.cwd: str | None = None  # the working directory as the code sees it
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._lost: str | None = None  # why the previous interpreter's state is gone
        self._starts = 0

    @property
    def pid(self) -> int | None:
        """The host pid of the child process (the namespace's supervisor), if running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def run(self, code: str) -> CellResult:
        """Execute `code`; never raises for anything the code does (SandboxError on startup)."""
        async with self._lock:
            notes = await self._ensure_started()
            try:
                reply = await asyncio.wait_for(self._exchange(code), self.config.timeout_s)
            except TimeoutError:
                await self._stop()
                self._lost = "the previous call timed out"
                result = CellResult("timeout", message=self._timeout_message())
            except (asyncio.IncompleteReadError, ConnectionError, SandboxProtocolError) as exc:
                result = CellResult("crashed", message=await self._crash_message(exc))
            except BaseException:  # cancelled mid-call: the interpreter's state is unknown
                _release(self._kill())
                self._lost = "the previous call was cancelled"
                raise
            else:
                result = _cell_result(reply)
            result.notes[:0] = notes
            result.warnings = self.isolation.warnings() if self.isolation else []
            return result

    async def aclose(self) -> None:
        """Kill the interpreter and everything it started."""
        await self._stop()

    # -- lifecycle -------------------------------------------------------------------------

    async def _ensure_started(self) -> list[str]:
        proc = self._proc
        if proc is not None and proc.returncode is None:
            return []
        if proc is not None:  # it died between calls (a thread called os._exit, CPU limit...)
            self._lost = f"the previous interpreter ended: {self._describe_exit(proc.returncode)}"
            self._proc = None
            _release(proc)
        await self._start()
        if self._starts == 1 or self._lost is None:
            return []
        note = (
            f"Note: a fresh Python interpreter was started ({self._lost}); variables, imports "
            "and functions from earlier calls are gone. Files in the working directory remain."
        )
        self._lost = None
        return [note]

    async def _start(self) -> None:
        uid = self._sandbox_uid()
        workdir = self._prepare_workdir(uid)
        spec: Spec = {
            "workdir": str(workdir),
            "uid": uid,
            "dedicated_uid": uid is not None and self.config.uid is None,
            "userns": os.geteuid() != 0,
            "parent_pid": os.getpid(),
            "limits": self._child_limits(),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # no PYTHON* variables, no user site, script dir not on sys.path
            "-B",
            str(_CHILD),
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(),
            cwd=str(workdir),
            start_new_session=True,  # its own session and process group, killed as one
        )
        self._proc = proc
        self._starts += 1
        try:
            ready = await asyncio.wait_for(self._read(proc), self.config.startup_timeout_s)
            if ready.get("ready") is not True:
                raise SandboxProtocolError(f"unexpected first message {ready!r:.200}")
        except (TimeoutError, asyncio.IncompleteReadError, SandboxProtocolError) as exc:
            detail = await _startup_stderr(proc)
            await self._stop()
            raise SandboxError(f"the python sandbox failed to start: {detail or exc!r}") from None
        self.isolation = Isolation.from_report(ready.get("isolation", {}))
        self.cwd = str(ready.get("cwd"))
        if self.config.require_network_isolation and not self.isolation.network:
            await self._stop()
            raise SandboxError(
                "network isolation is required but unavailable: "
                + "; ".join(self.isolation.problems)
            )

    def _child_limits(self) -> ChildLimits:
        c = self.config
        return {
            "cpu_s": c.cpu_s,
            "memory_mb": c.memory_mb,
            "file_size_mb": c.file_size_mb,
            "max_processes": c.max_processes,
            "max_open_files": c.max_open_files,
            "max_output_bytes": c.max_output_bytes,
            "shm_mb": c.shm_mb,
        }

    def _sandbox_uid(self) -> int | None:
        """A uid of its own per working directory, so no two episodes share one (root only)."""
        if os.geteuid() != 0:
            return None
        if self.config.uid is not None:
            return self.config.uid
        key = str(self.workdir.resolve()).encode()
        return _UID_BASE + zlib.crc32(key) % _UID_SPAN

    def _prepare_workdir(self, uid: int | None) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        workdir = self.workdir.resolve()
        if uid is not None:
            # the sandbox user owns its directory; 0700 keeps other sandbox users out
            os.chown(workdir, uid, uid, follow_symlinks=False)
            workdir.chmod(0o700)
        return workdir

    def _environment(self) -> dict[str, str]:
        path = [os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]
        env = {"PATH": os.pathsep.join(dict.fromkeys(path)), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        env.update(self.config.env)
        return env

    def _kill(self) -> asyncio.subprocess.Process | None:
        """SIGKILL the process group and the namespace's init (which takes the rest with it)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return proc
        victims = _child_pids(proc.pid)  # the interpreter, should it have left the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return proc

    async def _stop(self) -> None:
        proc = self._kill()
        if proc is not None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(proc.wait(), 5)
            _release(proc)

    # -- protocol --------------------------------------------------------------------------

    async def _exchange(self, code: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        proc.stdin.write(encode({"code": code}))
        await proc.stdin.drain()
        return await self._read(proc)

    async def _read(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        (size,) = FRAME.unpack(await proc.stdout.readexactly(FRAME.size))
        # the child caps its output, so a bigger reply means it is broken or hostile
        limit = reply_limit(self.config.max_output_bytes)
        if size > limit:
            raise SandboxProtocolError(f"reply of {size} bytes exceeds {limit}")
        return decode(await proc.stdout.readexactly(size))

    # -- explanations ----------------------------------------------------------------------

    def _timeout_message(self) -> str:
        return (
            f"execution exceeded the time limit of {self.config.timeout_s:g} s and was killed. "
            "The interpreter's state (variables, imports, functions) is lost and the output of "
            "this call too; the next call starts a fresh interpreter. Files written to the "
            "working directory remain."
        )

    async def _crash_message(self, exc: BaseException) -> str:
        proc = self._proc
        returncode = None
        if proc is not None:
            with contextlib.suppress(TimeoutError):
                returncode = await asyncio.wait_for(proc.wait(), 3)
        await self._stop()
        why = self._describe_exit(returncode)
        if isinstance(exc, SandboxProtocolError):
            why = f"it broke the reply protocol ({exc})"
        self._lost = "the previous interpreter crashed"
        return (
            f"the Python process died while running this code: {why}. Its state (variables, "
            "imports, functions) is lost; the next call starts a fresh interpreter. Files "
            "written to the working directory remain."
        )

    def _describe_exit(self, returncode: int | None) -> str:
        if returncode is None:
            return "it stopped answering"
        if returncode == EXIT_CPU:
            return f"its CPU-time budget of {self.config.cpu_s} s was used up (SIGXCPU)"
        if returncode >= 0:
            return f"it exited with status {returncode} (os._exit or a fatal error)"
        sig = -returncode
        if sig == signal.SIGXCPU:
            return f"its CPU-time budget of {self.config.cpu_s} s was used up (SIGXCPU)"
        if sig == signal.SIGKILL:
            return "it was killed by SIGKILL (out of memory, or the CPU-time hard limit)"
        if sig == signal.SIGSEGV:
            return "it crashed with a segmentation fault (SIGSEGV)"
        return f"it was killed by signal {_signal_name(sig)}"


def _release(proc: asyncio.subprocess.Process | None) -> None:
    """Close our end of a finished child's stdin while its event loop still runs."""
    # left open, the transport closes it when garbage collected, perhaps after the loop is
    # gone: "Event loop is closed" inside a finaliser, which can break pytest's reporting
    if proc is not None and proc.stdin is not None:
        proc.stdin.close()


def _cell_result(reply: dict[str, Any]) -> CellResult:
    error = reply.get("error")
    notes = []
    if killed := int(reply.get("killed_processes") or 0):
        notes.append(
            f"Note: {killed} process(es) the code started were still running when the call "
            "ended and were killed: processes do not outlive a call."
        )
    return CellResult(
        status="error" if error else "ok",
        stdout=_text(reply.get("stdout")),
        stderr=_text(reply.get("stderr")),
        traceback=_text(error) if error else None,
        stdout_dropped=int(reply.get("stdout_dropped") or 0),
        stderr_dropped=int(reply.get("stderr_dropped") or 0),
        notes=notes,
    )


def _text(value: Any) -> str:
    """A str safe to encode as UTF-8 (JSON may carry lone surrogates from the child)."""
    return str(value or "").encode("utf-8", "replace").decode("utf-8")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


async def _startup_stderr(proc: asyncio.subprocess.Process) -> str:
    """The tail of what a child that failed to start wrote to stderr (bounded)."""
    if proc.stderr is None:
        return ""
    with contextlib.suppress(TimeoutError, OSError):
        data = await asyncio.wait_for(proc.stderr.read(65_536), 2)
        return data.decode("utf-8", "replace").strip()[-2000:]
    return ""
