"""The messages between the python sandbox's parent (the harness) and its child (the interpreter).

Sequence
--------
1. The parent starts `python -I -B sandbox_child.py SPEC`, SPEC being a `Spec` as JSON.
2. The child isolates itself, then sends one `Ready` (what isolation it achieved, its cwd).
3. For each `Request` (code to run) the parent writes, the child answers one `Reply`.
4. End of file on the child's stdin ends it; so does the parent killing it (timeouts).

Wire format: every message is a JSON object, preceded by its length as 4 big-endian bytes.
The child caps the output it sends (`max_output_bytes` per stream), so the parent refuses any
reply larger than `reply_limit`: a hostile or broken child cannot grow the harness's memory.

The child imports this module inside the sandbox, by path: it uses the standard library only
and imports nothing from longhorizon.
"""

from __future__ import annotations

import json
import os
import signal
import struct
from collections.abc import Mapping
from typing import Any, TypedDict

__all__ = [
    "EXIT_CPU",
    "FRAME",
    "SANDBOX_CWD",
    "ChildLimits",
    "IsolationReport",
    "Ready",
    "Reply",
    "Request",
    "SandboxProtocolError",
    "Spec",
    "decode",
    "encode",
    "recv",
    "reply_limit",
    "send",
]

SANDBOX_CWD = "/tmp/work"  # where the working directory appears inside the sandbox
FRAME = struct.Struct(">I")  # length prefix of every message
EXIT_CPU = 128 + signal.SIGXCPU  # the child's exit status when its CPU time is up


class ChildLimits(TypedDict):
    """The limits the child applies to itself (the rest of SandboxConfig is the parent's)."""

    cpu_s: int
    memory_mb: int
    file_size_mb: int
    max_processes: int
    max_open_files: int
    max_output_bytes: int
    shm_mb: int


class Spec(TypedDict):
    """How the child should set itself up: argv[1] of the child, as JSON."""

    workdir: str  # the episode's directory on the host
    uid: int | None  # the uid to drop to (root harness only)
    dedicated_uid: bool  # no other sandbox uses `uid`: kill(-1) reaches only its processes
    userns: bool  # not root: enter a user namespace first
    parent_pid: int  # the harness: the child exits if it is already gone
    limits: ChildLimits


class IsolationReport(TypedDict, total=False):
    """What the child managed to put in place; `problems` says what failed and why."""

    problems: list[str]
    userns: bool
    network: bool
    mount: bool
    pid: bool
    filesystem: bool
    no_new_privs: bool
    uid: int | None
    kill_strays: bool


class Ready(TypedDict):
    ready: bool
    isolation: IsolationReport
    cwd: str  # the working directory as the code sees it


class Request(TypedDict):
    code: str


class Reply(TypedDict, total=False):
    stdout: str
    stderr: str
    error: str | None  # the code's exception, formatted
    stdout_dropped: int  # bytes cut by the output cap
    stderr_dropped: int
    killed_processes: int  # processes still running when the call ended


class SandboxProtocolError(RuntimeError):
    """The child sent something that is not a well-formed reply."""


def reply_limit(max_output_bytes: int) -> int:
    """The largest reply a well-behaved child sends (two capped streams, JSON-escaped)."""
    return 32 * max_output_bytes + 65_536


def encode(message: Mapping[str, Any]) -> bytes:
    """One frame: the length prefix and the JSON body."""
    payload = json.dumps(message).encode()
    return FRAME.pack(len(payload)) + payload


def decode(body: bytes) -> dict[str, Any]:
    """A frame's body as a JSON object; SandboxProtocolError when it is not one."""
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise SandboxProtocolError(f"malformed reply: {exc}") from None
    if not isinstance(message, dict):
        raise SandboxProtocolError("reply is not an object")
    return message


def send(fd: int, message: Mapping[str, Any]) -> None:
    """Write one frame to a file descriptor (the child's side: blocking, no asyncio)."""
    data = encode(message)
    while data:
        data = data[os.write(fd, data) :]


def recv(fd: int) -> dict[str, Any] | None:
    """Read one frame from a file descriptor; None at end of file."""
    header = _read_exact(fd, FRAME.size)
    if header is None:
        return None
    body = _read_exact(fd, FRAME.unpack(header)[0])
    return None if body is None else decode(body)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
