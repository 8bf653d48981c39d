"""The `python` tool through ToolSet: persistence, output capture, errors, restarts, episodes.

Each test runs real sandbox processes (about 0.2 s to start one); timeouts are kept at 1-3 s.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.tools import ToolContext, ToolResult, ToolSet
from longhorizon.tools.python_tool import python, sandbox_config, sandbox_for
from longhorizon.tools.sandbox import PythonSandbox, SandboxConfig

TOOLS = ToolSet([python])


def episode(tmp_path: Path, name: str = "ep", **limits: Any) -> ToolContext:
    """A ToolContext whose sandbox uses short test limits (override any SandboxConfig field)."""
    config = SandboxConfig(**{"timeout_s": 3.0, **limits})
    return ToolContext(
        episode_id=name, workdir=tmp_path / name, resources={"sandbox_config": config}
    )


async def call(ctx: ToolContext, code: str) -> ToolResult:
    arguments = json.dumps({"code": code})
    return await TOOLS.execute(
        ToolCall(id="c", function=FunctionCall(name="python", arguments=arguments)), ctx
    )


def run_calls(ctx: ToolContext, *codes: str) -> list[ToolResult]:
    """Run the calls in order in one event loop, then close the episode."""

    async def main() -> list[ToolResult]:
        try:
            return [await call(ctx, code) for code in codes]
        finally:
            await ctx.aclose()

    return asyncio.run(main())


def test_schema_is_what_the_model_sees() -> None:
    spec = python.spec
    assert spec.name == "python"
    assert spec.parameters["required"] == ["code"]
    assert set(spec.parameters["properties"]) == {"code"}  # ctx is not a model argument
    for word in ("persist", "network", "time limit", "variables are lost"):
        assert word in spec.description


def test_variables_persist_and_final_expression_is_shown(tmp_path: Path) -> None:
    ctx = episode(tmp_path)
    results = run_calls(
        ctx, "x = 21", "def double(v):\n    return 2 * v", "double(x)", "x = None\nx"
    )
    assert all(r.ok for r in results), [r.content for r in results]
    assert results[0].content == "(no output)"
    assert results[2].content == "42"
    assert results[3].content == "(no output)"  # a final None is not echoed


def test_stdout_and_stderr_are_captured(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "print('to stdout')\n"
        "print('to stderr', file=sys.stderr)\n"
        "os.system('echo from a subprocess')\n"
        "sys.stdout.buffer.write(b'raw bytes\\n')\n"
        "print('caf\\u00e9')"
    )
    [result] = run_calls(episode(tmp_path), code)
    assert result.ok
    lines = result.content.splitlines()
    stdout, stderr = lines[: lines.index("[stderr]")], lines[lines.index("[stderr]") + 1 :]
    # subprocess output lands in the same stream, in order
    assert stdout == ["to stdout", "from a subprocess", "raw bytes", "café"]
    assert stderr == ["to stderr"]


def test_exception_gives_a_traceback_and_keeps_state(tmp_path: Path) -> None:
    ctx = episode(tmp_path)
    results = run_calls(ctx, "kept = 'yes'", "def f():\n    return 1 / 0\n\nf()", "kept")
    error = results[1]
    assert error.error == "ZeroDivisionError: division by zero"
    assert "Traceback (most recent call last)" in error.content
    assert "return 1 / 0" in error.content  # the cell's source lines are shown
    assert "sandbox.py" not in error.content  # the server's own frames are hidden
    assert results[2].content == "'yes'"


def test_syntax_error_and_system_exit_do_not_end_the_interpreter(tmp_path: Path) -> None:
    results = run_calls(episode(tmp_path), "a = 1", "def (", "raise SystemExit(3)", "exit()", "a")
    assert results[1].error is not None and results[1].error.startswith("SyntaxError")
    assert results[2].error == "SystemExit: 3"
    assert results[3].error is not None and "SystemExit" in results[3].error
    assert results[4].content == "1"
    assert "fresh" not in results[4].content


def test_timeout_kills_and_the_next_call_starts_fresh(tmp_path: Path) -> None:
    ctx = episode(tmp_path, timeout_s=1.5)
    results = run_calls(ctx, "x = 1", "while True:\n    pass", "x")
    timeout = results[1]
    assert timeout.error is not None and "time limit of 1.5 s" in timeout.error
    assert "state" in timeout.content and "lost" in timeout.content
    assert timeout.duration_s < 4
    after = results[2]
    assert after.error == "NameError: name 'x' is not defined"
    assert "fresh Python interpreter" in after.content


def test_crash_is_reported_and_the_next_call_restarts(tmp_path: Path) -> None:
    results = run_calls(episode(tmp_path), "import os\nos._exit(3)", "print('back')")
    assert results[0].error is not None and "exited with status 3" in results[0].error
    assert results[1].ok and results[1].content.endswith("back")
    assert "fresh Python interpreter" in results[1].content


def test_episodes_do_not_share_state_or_files(tmp_path: Path) -> None:
    first, second = episode(tmp_path, "a"), episode(tmp_path, "b")

    async def main() -> list[ToolResult]:
        try:
            return [
                await call(first, "secret = 42\nopen('mine.txt', 'w').write('a')"),
                await call(second, "secret"),
                await call(second, "import os\nos.path.exists('mine.txt')"),
                await call(first, "secret"),
            ]
        finally:
            await first.aclose()
            await second.aclose()

    results = asyncio.run(main())
    assert results[1].error == "NameError: name 'secret' is not defined"
    assert results[2].content == "False"
    assert results[3].content == "42"
    assert first.state["python"] is not second.state["python"]


def test_files_in_the_working_directory_persist(tmp_path: Path) -> None:
    ctx = episode(tmp_path)
    host_dir = ctx.workdir / "python"
    host_dir.mkdir(parents=True)
    (host_dir / "given.csv").write_text("a,b\n1,2\n")  # the harness can hand files in
    results = run_calls(
        ctx,
        "print(open('given.csv').read().split()[1])",
        "open('notes.txt', 'w').write('kept')",
        "import os\nos._exit(0)",  # a restart does not touch the files
        "print(open('notes.txt').read())",
    )
    assert results[0].content == "1,2"
    assert results[3].content.endswith("kept")
    assert (host_dir / "notes.txt").read_text() == "kept"


def test_config_comes_from_resources(tmp_path: Path) -> None:
    ctx = ToolContext("e", tmp_path, resources={"sandbox_config": {"timeout_s": 1.0}})
    assert sandbox_config(ctx).timeout_s == 1.0
    assert sandbox_config(ToolContext("e", tmp_path)) == SandboxConfig()
    sandbox = sandbox_for(ctx)
    assert isinstance(sandbox, PythonSandbox) and sandbox_for(ctx) is sandbox
    assert sandbox.workdir == tmp_path / "python" and sandbox.pid is None  # started lazily


def test_aclose_kills_the_interpreter(tmp_path: Path) -> None:
    ctx = episode(tmp_path)

    async def main() -> int | None:
        await call(ctx, "1")
        pid = ctx.state["python"].pid
        await ctx.aclose()
        return pid

    pid = asyncio.run(main())
    assert pid is not None
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_concurrent_calls_are_serialised(tmp_path: Path) -> None:
    ctx = episode(tmp_path)

    async def main() -> list[ToolResult]:
        try:
            await call(ctx, "import time\nlog = []")
            codes = [f"log.append({i}); time.sleep(0.05); log.append({i})" for i in range(3)]
            await asyncio.gather(*(call(ctx, code) for code in codes))
            return [await call(ctx, "log")]
        finally:
            await ctx.aclose()

    [result] = asyncio.run(main())
    log = json.loads(result.content)
    assert [log[i] == log[i + 1] for i in range(0, 6, 2)] == [True] * 3
