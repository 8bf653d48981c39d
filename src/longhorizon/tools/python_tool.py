"""The `python` tool: a persistent, sandboxed code interpreter for the agent.

One `PythonSandbox` per episode lives in `ctx.state["python"]`: created on the first call,
killed by `ToolContext.aclose()`. Its limits come from `ctx.resources["sandbox_config"]` (a
`SandboxConfig` or a dict of its fields), else the defaults. See `longhorizon.tools.sandbox` for
exactly what is isolated and how; any missing safeguard is announced in every observation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longhorizon.tools.base import tool
from longhorizon.tools.sandbox import CellResult, PythonSandbox, SandboxConfig, SandboxError
from longhorizon.tools.types import ToolContext, ToolResult

STATE_KEY = "python"  # ctx.state key of the episode's sandbox
CONFIG_KEY = "sandbox_config"  # ctx.resources key of its SandboxConfig
WORKDIR_NAME = "python"  # the sandbox's directory below ctx.workdir


def sandbox_config(ctx: ToolContext) -> SandboxConfig:
    """The episode's sandbox settings: a SandboxConfig or a dict of its fields, else defaults."""
    value: Any = ctx.resources.get(CONFIG_KEY)
    if value is None:
        return SandboxConfig()
    if isinstance(value, SandboxConfig):
        return value
    return SandboxConfig.model_validate(value)


def sandbox_for(ctx: ToolContext) -> PythonSandbox:
    """The episode's sandbox, created on first use (its process starts on the first call)."""
    sandbox = ctx.state.get(STATE_KEY)
    if not isinstance(sandbox, PythonSandbox):
        sandbox = PythonSandbox(Path(ctx.workdir) / WORKDIR_NAME, sandbox_config(ctx))
        ctx.state[STATE_KEY] = sandbox
    return sandbox


# The tool's own timeout is only a backstop: SandboxConfig.timeout_s (per call) acts first.
@tool(timeout_s=900.0, max_output_tokens=4096)
async def python(code: str, ctx: ToolContext) -> ToolResult:
    """Run Python 3 code in a persistent sandboxed interpreter and return what it printed
    (stdout, stderr and any traceback). Variables, functions and imports persist between calls
    within this task, and the value of a final expression is shown, as in a notebook cell. The
    current directory is the only writable place and keeps its files between calls. There is no
    network access. Each call has a time limit; exceeding it, or crashing the interpreter,
    restarts it and all variables are lost.

    Args:
        code: Python source code to execute.
    """
    try:
        result = await sandbox_for(ctx).run(code)
    except SandboxError as exc:
        message = str(exc)
        return ToolResult(content=f"Error: {message}", error=message)
    return render(result)


def render(result: CellResult) -> ToolResult:
    """The observation: warnings, notes, stdout, stderr, traceback, in that order."""
    parts = [*result.warnings, *result.notes]
    body = _stream("", result.stdout, result.stdout_dropped)
    body += _stream("[stderr]\n", result.stderr, result.stderr_dropped)
    if result.traceback:
        body.append(result.traceback.rstrip("\n"))
    if result.message:
        body.append(f"Error: {result.message}")
    parts += body or ["(no output)"]
    return ToolResult(
        content="\n".join(parts),
        error=result.message or _last_line(result.traceback),
        truncated=bool(result.stdout_dropped or result.stderr_dropped),
    )


def _stream(label: str, text: str, dropped: int) -> list[str]:
    out = [label + text.rstrip("\n")] if text else []
    if dropped:
        out.append(f"[... {dropped} more bytes of output were cut ...]")
    return out


def _last_line(traceback: str | None) -> str | None:
    """The exception line of a traceback ("ValueError: bad"), the error summary."""
    if not traceback:
        return None
    lines = [line for line in traceback.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "error"
