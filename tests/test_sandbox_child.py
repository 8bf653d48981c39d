"""The sandbox's three parts: the child loads only the stdlib and the protocol; the framing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from longhorizon.tools import sandbox_protocol as protocol
from longhorizon.tools.sandbox import PythonSandbox

LIST_MODULES = "import json, sys\nprint(json.dumps(sorted(sys.modules)))"


def _modules_in_sandbox(workdir: Path) -> set[str]:
    async def main() -> str:
        sandbox = PythonSandbox(workdir)
        try:
            result = await sandbox.run(LIST_MODULES)
        finally:
            await sandbox.aclose()
        assert result.ok, result
        return result.stdout

    return set(json.loads(asyncio.run(main())))


def _bare_interpreter_modules() -> set[str]:
    """What `python -I` loads before any code (site and the environment's .pth files)."""
    out = subprocess.run(
        [sys.executable, "-I", "-c", LIST_MODULES], capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_child_imports_only_the_stdlib_and_the_protocol(tmp_path: Path) -> None:
    loaded = _modules_in_sandbox(tmp_path / "work")
    ours = {m for m in loaded if m.split(".")[0] == "longhorizon"}
    assert ours == {"longhorizon.tools.sandbox_protocol"}  # no package __init__, no harness
    extra = loaded - _bare_interpreter_modules() - {"__main__"}
    third_party = sorted(m for m in extra if m.split(".")[0] not in sys.stdlib_module_names)
    assert third_party == ["longhorizon.tools.sandbox_protocol"]  # no pydantic, numpy, torch...


def test_frames_round_trip_through_a_pipe() -> None:
    reply: protocol.Reply = {"stdout": "é\n", "stderr": "", "error": None, "stdout_dropped": 0}
    read, write = os.pipe()
    try:
        protocol.send(write, reply)
        os.close(write)
        assert protocol.recv(read) == reply
        assert protocol.recv(read) is None  # end of file: the parent closed stdin
    finally:
        os.close(read)
    frame = protocol.encode({"code": "1"})
    assert frame[:4] == len(b'{"code": "1"}').to_bytes(4, "big")


def test_malformed_replies_are_protocol_errors() -> None:
    with pytest.raises(protocol.SandboxProtocolError, match="reply is not an object"):
        protocol.decode(b"[1, 2]")
    with pytest.raises(protocol.SandboxProtocolError, match="malformed reply"):
        protocol.decode(b"{nope")
    assert protocol.reply_limit(16_000) == 32 * 16_000 + 65_536
