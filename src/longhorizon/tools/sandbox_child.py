"""The sandbox's child: isolates itself, then runs the episode's code (`sandbox.py` starts it).

Run as `python -I -B sandbox_child.py SPEC` (the protocol's `Spec` as JSON), still root when
the harness is. It applies the isolation that `longhorizon.tools.sandbox` describes (threat
model and limits are stated there), in order: namespaces, the read-only filesystem view,
resource limits, the identity drop; then it serves requests, one persistent globals dict for
all of them.

Everything here runs where the episode's code runs, so it imports the standard library and
the protocol module only: the protocol is loaded by its path, so no package `__init__`
(pydantic, the rest of longhorizon) is executed inside the sandbox.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import ctypes
import functools
import importlib.util
import io
import json
import linecache
import os
import re
import resource
import signal
import sys
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

PROTOCOL = "longhorizon.tools.sandbox_protocol"


def _load_protocol() -> types.ModuleType:
    """The protocol module from beside this file, without importing the packages above it."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_protocol.py")
    spec = importlib.util.spec_from_file_location(PROTOCOL, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the sandbox protocol from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PROTOCOL] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING or __name__ != "__main__":
    from longhorizon.tools import sandbox_protocol as protocol
else:  # a script in the sandbox
    protocol = _load_protocol()

_CLONE_NEWNS, _CLONE_NEWIPC, _CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
_CLONE_NEWPID, _CLONE_NEWNET = 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 0x20, 0x400, 0x800, 0x1000
_MS_REC, _MS_PRIVATE, _MS_RELATIME = 0x4000, 0x40000, 0x200000
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS = 1, 38
Report = protocol.IsolationReport
_COVERED = ("/tmp", "/run")  # replaced by empty tmpfs: host temp files and service sockets
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


def _attempt(report: Report, what: str, fn: Callable[..., Any], *args: Any) -> bool:
    """Run one isolation step; a failure is recorded in the report instead of raised."""
    try:
        fn(*args)
    except OSError as exc:
        report["problems"].append(f"{what}: {exc.strerror or exc}")
        return False
    return True


def main(spec: protocol.Spec) -> NoReturn:
    """Isolate, then serve requests until the parent closes stdin; never returns."""
    try:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die with the harness
        if os.getppid() != spec["parent_pid"]:  # it died before the line above took effect
            os._exit(1)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        channel = (os.dup(0), os.dup(1))  # the protocol leaves fds 0-2 for the code's stdio
        report: Report = {"problems": []}
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


def _enter_namespaces(spec: protocol.Spec, report: Report, channel: tuple[int, int]) -> None:
    if spec["userns"]:  # not root: a user namespace grants the rights for the others
        report["userns"] = _attempt(report, "user namespace", _enter_user_namespace)
    report["network"] = _attempt(report, "network namespace", _unshare, _CLONE_NEWNET)
    _attempt(report, "ipc namespace", _unshare, _CLONE_NEWIPC)
    report["mount"] = _attempt(report, "mount namespace", _unshare, _CLONE_NEWNS)
    report["pid"] = _attempt(report, "pid namespace", _unshare, _CLONE_NEWPID)
    if report["pid"]:
        # opened before the fork: the interpreter makes /dev read-only in the shared mount
        # namespace, and a supervisor that opened it later failed now and then (exit 70)
        devnull = os.open(os.devnull, os.O_RDWR)
        child = os.fork()  # the new PID namespace applies to children: the child is its init
        if child:
            _supervise(child, channel, devnull)
        os.close(devnull)


def _enter_user_namespace() -> None:
    uid, gid = os.getuid(), os.getgid()
    _unshare(_CLONE_NEWUSER)
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
    Path("/proc/self/gid_map").write_text(f"0 {gid} 1")


def _supervise(child: int, channel: tuple[int, int], devnull: int) -> NoReturn:
    """Outside the PID namespace: wait for its init and die the same way, for the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for fd in channel:  # the interpreter's pipes must close when it dies
        os.close(fd)
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


def _setup_filesystem(spec: protocol.Spec, report: Report) -> str:
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
    return protocol.SANDBOX_CWD


def _build_filesystem(spec: protocol.Spec) -> None:
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)  # nothing propagates back to the host
    # O_PATH handles reach the workdir and Python even once their paths are covered
    workdir = os.open(spec["workdir"], os.O_PATH | os.O_DIRECTORY)
    python = {p: os.open(p, os.O_PATH | os.O_DIRECTORY) for p in _python_paths()}
    roots = _cover_roots(list(python), switching_uid=spec["uid"] is not None)
    _remount_all_readonly()
    for root in roots:
        _mount("tmpfs", root, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=1m")
    _bind(workdir, protocol.SANDBOX_CWD, writable=True)
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


def _set_limits(spec: protocol.Spec, report: Report) -> None:
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


def _drop_privileges(spec: protocol.Spec, report: Report) -> None:
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


def _setup_process(cwd: str, spec: protocol.Spec, report: Report) -> tuple[_Capture, _Capture]:
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
    os._exit(protocol.EXIT_CPU)


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

    encoding = "utf-8"
    errors = "backslashreplace"

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
    spec: protocol.Spec,
    report: Report,
) -> NoReturn:
    fd_in, fd_out = channel
    main = types.ModuleType("__main__")  # the code's module: pickle finds its classes here
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    sys.argv = [""]
    server_pid = os.getpid()
    ready: protocol.Ready = {"ready": True, "isolation": report, "cwd": os.getcwd()}
    protocol.send(fd_out, ready)
    cell = 0
    while (request := protocol.recv(fd_in)) is not None:
        cell += 1
        reply = _run_cell(str(request.get("code", "")), main.__dict__, cell, streams, spec)
        if os.getpid() != server_pid:  # a fork made by the code came back here: not ours
            os._exit(0)
        if report["kill_strays"]:
            reply["killed_processes"] = _kill_strays()
        protocol.send(fd_out, reply)
    os._exit(0)


def _run_cell(
    code: str,
    namespace: dict[str, Any],
    cell: int,
    streams: tuple[_Capture, _Capture],
    spec: protocol.Spec,
) -> protocol.Reply:
    out, err = streams
    for stream in streams:
        stream.reset()
    # the code may have replaced them last time; typeshed marks sys.__stdout__ final
    sys.stdout = sys.__stdout__ = out.text  # type: ignore[misc,assignment]
    sys.stderr = sys.__stderr__ = err.text  # type: ignore[misc,assignment]
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
    if tree.body and isinstance(last := tree.body[-1], ast.Expr):  # shown like a notebook cell
        tree.body.pop()
        tail = ast.Expression(last.value)
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


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
