"""The solution-tree tools of the MLE domain (MLEvolve's harness): write_full_code,
patch_code, execute_code, list_nodes, select_node, invalidate_node, update_answer and
get_current_answer (notes: the shared write_notes / read_notes).

The competition comes from the episode's task (`task.metadata["recipe"]`, rebuilt with
`data.build`); its public files are written into the episode's sandbox directory before the
first run. `execute_code` runs a node's code as a fresh script (its own globals) in the
project's python sandbox (`tools.sandbox`: no network, read-only filesystem but the working
directory, CPU/memory/time limits), with a wall-clock limit of `task.metadata["time_limit_s"]`.
It captures stdout, stderr and the traceback, reads the last `validation_score: X` line
printed, and checks `submission.csv` with the competition's grader (test labels never
leave this process). There is no shell tool: everything runs inside that sandbox.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from longhorizon.tools.base import tool
from longhorizon.tools.mle.data import Competition, build, write_files
from longhorizon.tools.mle.grade import SubmissionError, parse_submission
from longhorizon.tools.mle.tree import (
    SUBMISSION_MARK,
    RunRecord,
    SolutionTree,
    TreeError,
    run_header,
)
from longhorizon.tools.sandbox import CellResult, PythonSandbox, SandboxConfig, SandboxError
from longhorizon.tools.types import ToolContext, ToolResult

__all__ = [
    "SUBMISSION_FILE",
    "competition_of",
    "competition_ref",
    "execute_code",
    "get_current_answer",
    "invalidate_node",
    "list_nodes",
    "node_ref",
    "patch_code",
    "select_node",
    "update_answer",
    "validation_metric",
    "write_full_code",
]

SUBMISSION_FILE = "submission.csv"
TREE_KEY, SANDBOX_KEY, COMP_KEY = "mle_tree", "mle_sandbox", "mle_competition"
SUBMISSIONS_KEY = "mle_submissions"  # node id -> the checked submission text of its last run
DEFAULT_TIME_LIMIT_S = 60.0
OUTPUT_CHARS = 2000  # stdout/stderr tail shown per run
_METRIC = re.compile(
    r"validation_score\s*[:=]\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)", re.I
)


def competition_ref(comp_id: str) -> str:
    """The evidence id of a competition's data (consulted by every execute_code)."""
    return f"mle-competition:{comp_id}"


def node_ref(episode_id: str, node_id: int) -> str:
    """The KAG id of a solution node of an episode."""
    return f"{episode_id}#node{node_id}"


def validation_metric(stdout: str) -> float | None:
    """The last `validation_score: X` (or `= X`) value printed, or None."""
    found = _METRIC.findall(stdout)
    return float(found[-1]) if found else None


def _tree(ctx: ToolContext) -> SolutionTree:
    tree = ctx.state.get(TREE_KEY)
    if not isinstance(tree, SolutionTree):
        tree = ctx.state[TREE_KEY] = SolutionTree()
    return tree


def competition_of(ctx: ToolContext) -> Competition:
    comp = ctx.state.get(COMP_KEY)
    if isinstance(comp, Competition):
        return comp
    if ctx.task is None or "recipe" not in ctx.task.metadata:
        raise TreeError("this episode's task is not an MLE competition (no recipe)")
    comp = ctx.state[COMP_KEY] = build(ctx.task.metadata["recipe"])
    return comp


def _sandbox(ctx: ToolContext) -> PythonSandbox:
    sandbox = ctx.state.get(SANDBOX_KEY)
    if isinstance(sandbox, PythonSandbox):
        return sandbox
    meta: dict[str, Any] = ctx.task.metadata if ctx.task else {}
    limit = float(meta.get("time_limit_s", DEFAULT_TIME_LIMIT_S))
    workdir = Path(ctx.workdir) / "mle"
    write_files(competition_of(ctx), workdir, str(meta.get("description", "")))
    config = SandboxConfig(timeout_s=limit, memory_mb=2048)
    sandbox = ctx.state[SANDBOX_KEY] = PythonSandbox(workdir, config)
    return sandbox


def _fail(message: str) -> ToolResult:
    return ToolResult(content=f"Error: {message}", error=message)


@tool(timeout_s=10.0)
async def write_full_code(code: str, ctx: ToolContext, plan: str = "") -> ToolResult:
    """Start a new root of the solution tree with a complete script (it becomes the selected
    node). The script reads train.csv and test.csv from the current directory, prints
    `validation_score: X` for a validation split it holds out from train, and writes
    submission.csv. Run it with execute_code.

    Args:
        code: the complete Python script.
        plan: one line on the idea of this solution.
    """
    try:
        node = _tree(ctx).add_root(code, plan)
    except TreeError as exc:
        return _fail(str(exc))
    return ToolResult(
        content=f"Created node {node.id} (a new root); it is selected. Run it with execute_code.",
        refs=[node_ref(ctx.episode_id, node.id)],
    )


@tool(timeout_s=10.0)
async def patch_code(
    node_id: int, old: str, new: str, ctx: ToolContext, plan: str = ""
) -> ToolResult:
    """Make a child of a node by replacing one exact snippet of its code (it becomes the
    selected node; the parent is unchanged).

    Args:
        node_id: the node to patch.
        old: the exact text to replace; it must occur exactly once in that node's code.
        new: the replacement text.
        plan: one line on what the patch changes and why.
    """
    try:
        node = _tree(ctx).patch(node_id, old, new, plan)
    except TreeError as exc:
        return _fail(str(exc))
    return ToolResult(
        content=f"Created node {node.id} (child of {node_id}); it is selected. "
        "Run it with execute_code.",
        refs=[node_ref(ctx.episode_id, node.id)],
    )


@tool(timeout_s=900.0, max_output_tokens=2048)
async def execute_code(ctx: ToolContext, node_id: int | None = None) -> ToolResult:
    """Run a node's script in the sandbox (fresh globals, a time limit) and record the result:
    what it printed, any exception, its validation_score and whether submission.csv is valid.

    Args:
        node_id: the node to run (default: the selected node).
    """
    tree = _tree(ctx)
    try:
        node = tree.get(node_id)
        sandbox = _sandbox(ctx)
    except (TreeError, ValueError) as exc:
        return _fail(str(exc))
    submission = sandbox.workdir / SUBMISSION_FILE
    submission.unlink(missing_ok=True)  # a stale file from another node must not count
    try:
        cell = await sandbox.run(_script(node.code))
    except SandboxError as exc:
        return _fail(str(exc))
    comp = competition_of(ctx)
    run, rows = _record(cell, submission, comp)
    tree.record_run(node.id, run)
    if run.submission_valid:
        _submissions(ctx)[node.id] = submission.read_text(errors="replace")
    else:
        _submissions(ctx).pop(node.id, None)
    body = _output(cell)
    return ToolResult(
        content="\n".join([run_header(node, rows), *body]),
        refs=[competition_ref(comp.id), node_ref(ctx.episode_id, node.id)],
    )


def _script(code: str) -> str:
    """A cell that runs `code` as a script with its own globals (nothing leaks between
    nodes; imports stay cached in the interpreter, so later runs start fast)."""
    return (
        "__mle_globals = {'__name__': '__main__', '__file__': 'solution.py'}\n"
        f"exec(compile({code!r}, 'solution.py', 'exec'), __mle_globals)\n"
        "del __mle_globals\n"
    )


def _record(cell: CellResult, submission: Path, comp: Competition) -> tuple[RunRecord, int | None]:
    if not cell.ok:
        return RunRecord(False, error=_cell_error(cell)), None
    metric = validation_metric(cell.stdout)
    problem, rows = None, None
    try:
        rows = len(parse_submission(_read(submission), comp))
    except SubmissionError as exc:
        problem = f"invalid submission: {exc}"
    if metric is None:
        problem = problem or "no `validation_score: X` line was printed"
    return RunRecord(problem is None, metric, rows is not None, problem), rows


def _read(path: Path) -> str:
    if not path.is_file():
        raise SubmissionError(f"no {SUBMISSION_FILE} was written")
    return path.read_text(errors="replace")


def _cell_error(cell: CellResult) -> str:
    if cell.message:
        return cell.message.splitlines()[0]
    lines = [ln for ln in (cell.traceback or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else cell.status


def _output(cell: CellResult) -> list[str]:
    parts = [*cell.warnings, *cell.notes]
    if cell.stdout.strip():
        parts.append("[stdout]\n" + _tail(cell.stdout))
    if cell.stderr.strip():
        parts.append("[stderr]\n" + _tail(cell.stderr))
    if cell.traceback:
        parts.append(_tail(cell.traceback))
    if cell.message:
        parts.append(f"Error: {cell.message}")
    return parts


def _tail(text: str) -> str:
    text = text.rstrip("\n")
    return text if len(text) <= OUTPUT_CHARS else "[...]\n" + text[-OUTPUT_CHARS:]


@tool(timeout_s=10.0)
async def list_nodes(ctx: ToolContext) -> ToolResult:
    """List every node of the solution tree: parent, status, validation score, why it failed
    or was invalidated, and which node is selected and committed."""
    return ToolResult(content=_tree(ctx).listing())


@tool(timeout_s=10.0)
async def select_node(node_id: int, ctx: ToolContext) -> ToolResult:
    """Select a node (execute_code runs the selected node by default) and show its code.

    Args:
        node_id: the node to select.
    """
    tree = _tree(ctx)
    try:
        node = tree.get(node_id)
    except TreeError as exc:
        return _fail(str(exc))
    tree.selected = node.id
    return ToolResult(content=f"{node.line()}\n```python\n{node.code}\n```")


@tool(timeout_s=10.0)
async def invalidate_node(node_id: int, reason: str, ctx: ToolContext) -> ToolResult:
    """Mark a node invalid (a leak, an overfit, a wrong validation); it stays in the tree as
    evidence and can no longer be the answer.

    Args:
        node_id: the node to invalidate.
        reason: why its result cannot be trusted.
    """
    tree = _tree(ctx)
    was_answer = tree.answer == node_id
    try:
        node = tree.invalidate(node_id, reason)
    except TreeError as exc:
        return _fail(str(exc))
    cleared = " It was the committed answer; there is none now." if was_answer else ""
    return ToolResult(
        content=f"Invalidated node {node.id}: {node.invalid_reason}.{cleared}",
        refs=[node_ref(ctx.episode_id, node.id)],
    )


@tool(timeout_s=10.0)
async def update_answer(node_id: int, ctx: ToolContext) -> ToolResult:
    """Commit a node's submission as the answer (it must have run with a validation score
    and a valid submission, and not be invalidated). A later commit replaces it.

    Args:
        node_id: the node whose submission.csv becomes the answer.
    """
    tree = _tree(ctx)
    try:
        node = tree.get(node_id)
        text = _committed_file(ctx, node.id, tree)
        tree.commit(node.id, text)
    except (TreeError, SubmissionError) as exc:
        return _fail(str(exc))
    return ToolResult(
        content=f"Committed node {node.id} (validation_score={node.metric!r}) as the answer.\n"
        f"{SUBMISSION_MARK}{text}",
        refs=[node_ref(ctx.episode_id, node.id)],
    )


def _committed_file(ctx: ToolContext, node_id: int, tree: SolutionTree) -> str:
    """The submission the node's last run wrote (kept in this process when it was checked:
    the sandbox can rewrite its own files, not this copy)."""
    node = tree.get(node_id)
    text = _submissions(ctx).get(node.id)
    if node.status != "ok" or text is None:
        tree.commit(node.id, "")  # raises, saying why the node cannot be the answer
        raise SubmissionError(f"node {node_id} has no checked submission; run it again")
    return text


def _submissions(ctx: ToolContext) -> dict[int, str]:
    return ctx.state.setdefault(SUBMISSIONS_KEY, {})


@tool(timeout_s=10.0)
async def get_current_answer(ctx: ToolContext) -> ToolResult:
    """Show the committed answer: its node, validation score and the first submission rows."""
    tree = _tree(ctx)
    if tree.answer is None:
        return ToolResult(content="No answer is committed yet: use update_answer.")
    node = tree.get(tree.answer)
    head = "\n".join((node.submission or "").splitlines()[:6])
    return ToolResult(content=f"{node.line()}\n{head}\n...")
