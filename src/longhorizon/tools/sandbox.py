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

import ast
import asyncio
import builtins
import contextlib
import ctypes
import functools
import io
import json
import linecache
import os
import re
import resource
import signal
import struct
import sys
import traceback
import types
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field

SANDBOX_CWD = "/tmp/work"  # where the working directory appears inside the sandbox
_FRAME = struct.Struct(">I")  # length prefix of every protocol message
_UID_BASE, _UID_SPAN = 1_000_000_000, 1_000_000_000  # dedicated uids stay below 2**31
_EXIT_CPU = 128 + signal.SIGXCPU  # the interpreter's exit status when its CPU time is up
_COVERED = ("/tmp", "/run")  # replaced by empty tmpfs: host temp files and service sockets
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


class SandboxProtocolError(RuntimeError):
    """The child sent something that is not a well-formed reply."""


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
                self._kill()
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
        spec = {
            "workdir": str(workdir),
            "uid": uid,
            "dedicated_uid": uid is not None and self.config.uid is None,
            "userns": os.geteuid() != 0,
            "parent_pid": os.getpid(),
            "limits": self.config.model_dump(exclude={"env"}),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # no PYTHON* variables, no user site, script dir not on sys.path
            "-B",
            str(Path(__file__).resolve()),
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

    # -- protocol --------------------------------------------------------------------------

    async def _exchange(self, code: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        payload = json.dumps({"code": code}).encode()
        proc.stdin.write(_FRAME.pack(len(payload)) + payload)
        await proc.stdin.drain()
        return await self._read(proc)

    async def _read(self, proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        (size,) = _FRAME.unpack(await proc.stdout.readexactly(_FRAME.size))
        # the child caps its output, so a bigger reply means it is broken or hostile
        limit = 32 * self.config.max_output_bytes + 65_536
        if size > limit:
            raise SandboxProtocolError(f"reply of {size} bytes exceeds {limit}")
        body = await proc.stdout.readexactly(size)
        try:
            message = json.loads(body)
        except ValueError as exc:
            raise SandboxProtocolError(f"malformed reply: {exc}") from None
        if not isinstance(message, dict):
            raise SandboxProtocolError("reply is not an object")
        return message

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
        if returncode == _EXIT_CPU:
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


# =============================================================================================
# Child side: runs as `python -I -B sandbox.py SPEC`. Everything below uses only the stdlib.
# =============================================================================================

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 0x20, 0x400, 0x800, 0x1000
_MS_REC, _MS_PRIVATE, _MS_RELATIME = 0x4000, 0x40000, 0x200000
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")  # mountinfo writes a space as \040
_MOUNT_OPTIONS = {
    "ro": _MS_RDONLY,
    "nosuid": _MS_NOSUID,
    "nodev": _MS_NODEV,
    "noexec": _MS_NOEXEC,
    "noatime": _MS_NOATIME,
    "nodiratime": _MS_NODIRATIME,
    "relatime": _MS_RELATIME,
}


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    c_str, c_ulong = ctypes.c_char_p, ctypes.c_ulong
    libc.mount.argtypes = [c_str, c_str, c_str, c_ulong, c_str]
    libc.unshare.argtypes = [ctypes.c_int]
    libc.prctl.argtypes = [ctypes.c_int, c_ulong, c_ulong, c_ulong, c_ulong]
    return libc


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _unshare(flags: int) -> None:
    _check(_libc().unshare(flags), "unshare")


def _prctl(option: int, value: int) -> None:
    _check(_libc().prctl(option, value, 0, 0, 0), "prctl")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    def enc(s: str | None) -> bytes | None:
        return s.encode() if s is not None else None

    _check(_libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data or None)), target)


def _remount(target: str, flags: int) -> None:
    _mount(None, target, None, _MS_BIND | _MS_REMOUNT | flags)


def _attempt(report: dict[str, Any], what: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Run one isolation step; a failure is recorded in the report instead of raised."""
    try:
        fn(*args)
    except OSError as exc:
        report["problems"].append(f"{what}: {exc.strerror or exc}")
        return False
    return True


def _child_main(spec: dict[str, Any]) -> NoReturn:
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the harness
        if os.getppid() != spec["parent_pid"]:  # it died before the line above took effect
            os._exit(1)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        channel = (os.dup(0), os.dup(1))  # the protocol leaves fds 0-2 for the code's stdio
        report: dict[str, Any] = {"problems": []}
        _enter_namespaces(spec, report, channel)  # forks: returns in the interpreter only
        cwd = _setup_filesystem(spec, report)
        os.chdir(cwd)  # still root: an ancestor may be closed to the sandbox user
        _set_limits(spec, report)
        _drop_privileges(spec, report)
        streams = _setup_process(cwd, spec, report)
    except BaseException:  # startup failed: the parent shows this on stderr
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(70)
    _serve(channel, streams, spec, report)


def _enter_namespaces(
    spec: dict[str, Any], report: dict[str, Any], channel: tuple[int, int]
) -> None:
    if spec["userns"]:  # not root: a user namespace grants the rights for the others
        report["userns"] = _attempt(report, "user namespace", _enter_user_namespace)
    report["network"] = _attempt(report, "network namespace", _unshare, _CLONE_NEWNET)
    _attempt(report, "ipc namespace", _unshare, _CLONE_NEWIPC)
    report["mount"] = _attempt(report, "mount namespace", _unshare, _CLONE_NEWNS)
    report["pid"] = _attempt(report, "pid namespace", _unshare, _CLONE_NEWPID)
    if report["pid"]:
        child = os.fork()  # the new PID namespace applies to children: the child is its init
        if child:
            _supervise(child, channel)


def _enter_user_namespace() -> None:
    uid, gid = os.getuid(), os.getgid()
    _unshare(_CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def _supervise(child: int, channel: tuple[int, int]) -> NoReturn:
    """Outside the PID namespace: wait for its init and die the same way, for the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in channel:  # the interpreter's pipes must close when it dies
        os.close(fd)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except ChildProcessError:
            os._exit(70)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        with contextlib.suppress(OSError, ValueError):
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        os._exit(128 - code)
    os._exit(code)


# -- filesystem -----------------------------------------------------------------------------


def _setup_filesystem(spec: dict[str, Any], report: dict[str, Any]) -> str:
    """Private read-only view with a writable cwd; returns the cwd as the code sees it."""
    report["filesystem"] = False
    if not report["mount"]:
        report["problems"].append("no mount namespace: writes are limited by permissions only")
        return spec["workdir"]
    # a half-built view is worse than none: any failure here aborts the start
    _build_filesystem(spec)
    report["filesystem"] = True
    if report["pid"]:
        flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        _attempt(report, "private /proc", _mount, "proc", "/proc", "proc", flags)
    return SANDBOX_CWD


def _build_filesystem(spec: dict[str, Any]) -> None:
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    # O_PATH handles reach the workdir and Python even once their paths are covered
    workdir = os.open(spec["workdir"], os.O_PATH | os.O_DIRECTORY)
    python = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in _python_paths()}
    roots = _cover_roots(list(python), switching_uid=spec["uid"] is not None)
    _remount_all_readonly()
    for root in roots:
        _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=1m")
    _bind(workdir, SANDBOX_CWD, writable=True)
    for path, fd in python.items():
        if _under_any(path, roots):
            _bind(fd, path, writable=False)
    for root in roots:
        _remount(root, _MS_RDONLY | _MS_NOSUID | _MS_NODEV)
    if os.path.isdir("/dev/shm"):  # multiprocessing needs a writable one for its semaphores
        options = f"mode=1777,size={spec['limits']['shm_mb']}m"
        _mount("tmpfs", "/dev/shm", "tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, options)
    for fd in (workdir, *python.values()):
        os.close(fd)


def _python_paths() -> list[str]:
    """Top-most directories of the Python installation and its import path."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)}
    candidates.update(sys.path)
    paths = sorted({os.path.realpath(p) for p in candidates if p and os.path.isdir(p)})
    kept: list[str] = []
    for path in paths:  # sorted, so a parent comes before its children
        if not _under_any(path, kept):
            kept.append(path)
    return kept


def _cover_roots(python: list[str], switching_uid: bool) -> list[str]:
    """Directories to cover with tmpfs: /tmp, /run and what hides Python from the sandbox uid."""
    roots = [p for p in _COVERED if os.path.isdir(p) and not os.path.islink(p)]
    for path in python:
        if _under_any(path, roots) or not switching_uid:
            continue
        blocker = _closed_ancestor(path)
        if blocker is not None:
            roots.append(blocker)
    return roots


def _closed_ancestor(path: str) -> str | None:
    """The top-most ancestor that a user other than its owner and group may not enter."""
    current = "/"
    for part in Path(path).parts[1:-1]:
        current = os.path.join(current, part)
        if not os.stat(current).st_mode & 0o001:
            return current
    return None


def _under_any(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _mount_flags() -> dict[str, int]:
    """Per-mount flags of every mount point (the top-most mount wins), from mountinfo."""
    flags = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
        value = 0
        for option in fields[5].split(","):
            value |= _MOUNT_OPTIONS.get(option, 0)
        flags[point] = value
    return flags


def _remount_all_readonly() -> None:
    failed = []
    for point, flags in _mount_flags().items():
        # keep nosuid/nodev/noexec/atime as they are: only add read-only
        try:
            _remount(point, flags | _MS_RDONLY)
        except OSError:
            failed.append(point)
    if "/" in failed:
        raise OSError(1, "could not make / read-only")


def _bind(source_fd: int, target: str, writable: bool) -> None:
    os.makedirs(target, exist_ok=True)
    _mount(f"/proc/self/fd/{source_fd}", target, None, _MS_BIND)
    # the bind inherits the source mount's flags (read-only by now); set them explicitly
    flags = _mount_flags().get(target, 0) & ~_MS_RDONLY | _MS_NOSUID | _MS_NODEV
    _remount(target, flags if writable else flags | _MS_RDONLY)


# -- limits and identity --------------------------------------------------------------------


def _set_limits(spec: dict[str, Any], report: dict[str, Any]) -> None:
    limits = spec["limits"]
    mib = 1024 * 1024
    _lower(resource.RLIMIT_CPU, limits["cpu_s"], limits["cpu_s"] + 1)  # SIGXCPU, then SIGKILL
    _lower(resource.RLIMIT_AS, limits["memory_mb"] * mib)
    _lower(resource.RLIMIT_FSIZE, limits["file_size_mb"] * mib)
    _lower(resource.RLIMIT_NOFILE, limits["max_open_files"])
    if spec["uid"] is not None:
        # RLIMIT_NPROC counts every process of the uid: meaningful only for a dedicated one
        _lower(resource.RLIMIT_NPROC, limits["max_processes"])
    else:
        report["problems"].append("no process-count limit (no dedicated uid)")


def _lower(which: int, soft: int, hard: int | None = None) -> None:
    hard = soft if hard is None else hard
    _, current = resource.getrlimit(which)
    if current != resource.RLIM_INFINITY:
        hard = min(hard, current)
    resource.setrlimit(which, (min(soft, hard), hard))


def _drop_privileges(spec: dict[str, Any], report: dict[str, Any]) -> None:
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)  # no setuid binary or file capability can elevate
    report["no_new_privs"] = True
    uid = spec["uid"]
    report["uid"] = uid
    if uid is None:
        if report.get("userns"):
            _lock_user_namespace()
        return
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise RuntimeError("privileges could not be dropped")


def _lock_user_namespace() -> None:
    """Without root, leave the namespace that owns our mounts: they become unchangeable.

    A nested user namespace has no rights over the mount and network namespaces of its parent,
    so the code cannot unmount the covers or remount anything writable.
    """
    _unshare(_CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text("0 0 1")
    Path("/proc/self/gid_map").write_text("0 0 1")


# -- process setup and serving --------------------------------------------------------------


def _setup_process(cwd: str, spec: dict[str, Any], report: dict[str, Any]) -> tuple[Any, Any]:
    os.environ.update(HOME=cwd, TMPDIR=cwd, PWD=cwd)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # a change of uid cleared the earlier one
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-big file is an OSError, not a death
    # as PID 1 of its namespace the interpreter ignores SIGXCPU's default action, so only the
    # hard limit's SIGKILL would end it; exit with a status that names the cause instead
    signal.signal(signal.SIGXCPU, _out_of_cpu)
    # kill(-1) reaches exactly the sandbox's processes only inside its PID namespace or as a
    # uid no other sandbox uses
    report["kill_strays"] = bool(report["pid"] or spec["dedicated_uid"])
    if report["kill_strays"]:
        _kill_strays()  # leftovers of an earlier interpreter of this uid
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    cap = spec["limits"]["max_output_bytes"]
    out, err = _Capture(1, cap), _Capture(2, cap)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the interpreter
    return out, err


def _out_of_cpu(signum: int, frame: types.FrameType | None) -> None:
    os._exit(_EXIT_CPU)


def _kill_strays() -> int:
    """Kill every other process of the sandbox and reap them; how many were still running."""
    killed = 0
    while True:
        # as PID 1 of its namespace, or as the only process of its uid, -1 means exactly
        # the sandbox's own processes (never the caller itself)
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, signal.SIGKILL)
        try:
            _, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return killed
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


class _Capture:
    """One output stream: fd 1 or 2 is a memfd, so subprocesses' output lands in order too.

    The memfd is also held on a private descriptor: code that closes or redirects fd 1 loses
    nothing of ours, and the next call puts the memfd back.
    """

    def __init__(self, fd: int, cap: int) -> None:
        self.memfd = os.memfd_create(f"fd{fd}", os.MFD_CLOEXEC)
        self.fd, self.cap = fd, cap
        self.dropped, self.full = 0, False
        self.text = _TextSink(self)
        self.reset()

    def write(self, data: bytes) -> None:
        if not self.full:
            room = self.cap - os.lseek(self.memfd, 0, os.SEEK_CUR)  # offset shared with fd
            self.full = room <= len(data)
            self._write_all(data[: max(room, 0)])
            data = data[max(room, 0) :]
        self.dropped += len(data)  # over the cap: counted, never stored

    def _write_all(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.memfd, data) :]
            except OSError:  # the file-size limit
                self.dropped += len(data)
                return

    def reset(self) -> None:
        os.dup2(self.memfd, self.fd)
        os.ftruncate(self.memfd, 0)
        os.lseek(self.memfd, 0, os.SEEK_SET)
        self.dropped, self.full = 0, False

    def collect(self) -> tuple[str, int]:
        size = os.fstat(self.memfd).st_size
        data = os.pread(self.memfd, self.cap, 0)
        return data.decode("utf-8", "replace"), self.dropped + max(0, size - self.cap)


class _ByteSink(io.RawIOBase):
    def __init__(self, capture: _Capture) -> None:
        super().__init__()
        self._capture = capture

    def write(self, data: Any) -> int:
        raw = bytes(data)
        self._capture.write(raw)
        return len(raw)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._capture.fd


class _TextSink(io.TextIOBase):
    """sys.stdout / sys.stderr of the code: unbuffered, so output order matches reality."""

    def __init__(self, capture: _Capture) -> None:
        super().__init__()
        self._capture = capture
        self.buffer = _ByteSink(capture)

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "backslashreplace"

    def write(self, text: str) -> int:
        self._capture.write(str(text).encode("utf-8", "backslashreplace"))
        return len(text)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._capture.fd

    def isatty(self) -> bool:
        return False


def _serve(
    channel: tuple[int, int],
    streams: tuple[_Capture, _Capture],
    spec: dict[str, Any],
    report: dict[str, Any],
) -> NoReturn:
    fd_in, fd_out = channel
    main = types.ModuleType("__main__")  # the code's module: pickle finds its classes here
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    sys.argv = [""]
    server_pid = os.getpid()
    _send(fd_out, {"ready": True, "isolation": report, "cwd": os.getcwd()})
    cell = 0
    while (request := _recv(fd_in)) is not None:
        cell += 1
        reply = _run_cell(str(request.get("code", "")), main.__dict__, cell, streams, spec)
        if os.getpid() != server_pid:  # a fork made by the code came back here: not ours
            os._exit(0)
        if report["kill_strays"]:
            reply["killed_processes"] = _kill_strays()
        _send(fd_out, reply)
    os._exit(0)


def _run_cell(
    code: str,
    namespace: dict[str, Any],
    cell: int,
    streams: tuple[_Capture, _Capture],
    spec: dict[str, Any],
) -> dict[str, Any]:
    out, err = streams
    for stream in streams:
        stream.reset()
    sys.stdout = sys.__stdout__ = out.text  # the code may have replaced them last time
    sys.stderr = sys.__stderr__ = err.text
    filename = f"<cell {cell}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    error = None
    try:
        _execute(code, filename, namespace)
    except BaseException as exc:  # SystemExit, MemoryError...: all are the code's own result
        error = _format_exception(exc, spec["limits"]["max_output_bytes"])
    stdout, stdout_dropped = out.collect()
    stderr, stderr_dropped = err.collect()
    return {
        "stdout": stdout,
        "stderr": stderr,
        "error": error,
        "stdout_dropped": stdout_dropped,
        "stderr_dropped": stderr_dropped,
    }


def _execute(code: str, filename: str, namespace: dict[str, Any]) -> None:
    tree = ast.parse(code, filename=filename, mode="exec")
    tail = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):  # shown like a notebook cell
        tail = ast.Expression(tree.body.pop().value)
    exec(compile(tree, filename, "exec"), namespace)
    if tail is not None:
        value = eval(compile(tail, filename, "eval"), namespace)
        if value is not None:
            print(repr(value))


def _format_exception(exc: BaseException, cap: int) -> str:
    try:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next  # the sandbox's own frames are noise to the model
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:  # e.g. no memory left to format it
        text = f"{type(exc).__name__} (traceback unavailable)\n"
    if len(text) > cap:  # keep the head and the end, where the error itself is
        text = text[: cap // 4] + "\n[... traceback truncated ...]\n" + text[-(cap * 3 // 4) :]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _send(fd: int, message: dict[str, Any]) -> None:
    payload = json.dumps(message).encode()
    data = _FRAME.pack(len(payload)) + payload
    while data:
        data = data[os.write(fd, data) :]


def _recv(fd: int) -> dict[str, Any] | None:
    header = _read_exact(fd, _FRAME.size)
    if header is None:
        return None
    body = _read_exact(fd, _FRAME.unpack(header)[0])
    return None if body is None else json.loads(body)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


if __name__ == "__main__":
    _child_main(json.loads(sys.argv[1]))
