"""The solution tree of one MLE episode: nodes of complete code, each a new root or a patch
of its parent, with what running it gave (status, validation metric, submission check),
invalidations (kept, with their reason: negative evidence) and the committed answer.

The tools mutate one `SolutionTree` per episode; `replay` rebuilds the same tree from the
episode's calls and observations (what the verifier and the KAG write-back read), calling
the same methods, so the two cannot disagree. A call that failed changed nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "SUBMISSION_MARK",
    "Call",
    "RunRecord",
    "SolutionNode",
    "SolutionTree",
    "TreeError",
    "replay",
    "run_header",
]

Status = Literal["draft", "ok", "failed", "invalidated"]
SUBMISSION_MARK = "submission.csv:\n"  # update_answer's observation: the committed file follows
_HEADER = re.compile(
    r"^node (?P<id>\d+): (?P<status>ok|failed)(?:, validation_score=(?P<metric>[^,;\s]+))?"
    r"(?:, submission (?P<sub>valid|invalid))?(?: \(\d+ rows\))?;(?P<error>.*)$",
    re.M,
)


class TreeError(ValueError):
    """A tree operation that cannot be done (unknown node, a patch that does not apply...)."""


@dataclass
class RunRecord:
    """What one execution of a node gave."""

    ok: bool  # ran to the end, printed a metric and wrote a valid submission
    metric: float | None = None
    submission_valid: bool = False
    error: str | None = None


@dataclass
class SolutionNode:
    id: int
    parent: int | None
    code: str
    plan: str = ""
    status: Status = "draft"
    metric: float | None = None
    submission_valid: bool = False
    error: str | None = None
    invalid_reason: str | None = None
    submission: str | None = None  # the committed file's text (set when committed)
    runs: int = 0

    def line(self) -> str:
        parent = "root" if self.parent is None else f"child of {self.parent}"
        metric = "-" if self.metric is None else f"{self.metric:.6g}"
        why = self.invalid_reason or self.error or ""
        plan = f" plan: {self.plan}" if self.plan else ""
        return (
            f"node {self.id} ({parent}): {self.status}, validation_score={metric}"
            + (f" [{why}]" if why else "")
            + plan
        )


@dataclass
class SolutionTree:
    nodes: dict[int, SolutionNode] = field(default_factory=dict)
    selected: int | None = None
    answer: int | None = None

    def get(self, node_id: int | None) -> SolutionNode:
        if node_id is None:
            if self.selected is None:
                raise TreeError("no node is selected: pass node_id, or write code first")
            node_id = self.selected
        if node_id not in self.nodes:
            known = ", ".join(map(str, self.nodes)) or "none yet"
            raise TreeError(f"no node {node_id}; nodes: {known}")
        return self.nodes[node_id]

    def add(self, parent: int | None, code: str, plan: str = "") -> SolutionNode:
        """A node under `parent` (None: a root) with the next id; it becomes selected."""
        if not code.strip():
            raise TreeError("the code is empty")
        node = SolutionNode(len(self.nodes) + 1, parent, code, plan.strip())
        self.nodes[node.id] = node
        self.selected = node.id
        return node

    def add_root(self, code: str, plan: str = "") -> SolutionNode:
        return self.add(None, code, plan)

    def patch(self, node_id: int, old: str, new: str, plan: str = "") -> SolutionNode:
        """A child of `node_id` whose code has the one occurrence of `old` replaced by `new`."""
        parent = self.get(node_id)
        if not old:
            raise TreeError("old is empty: give the exact text to replace")
        count = parent.code.count(old)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise TreeError(f"old {where} in node {node_id}'s code; it must occur exactly once")
        return self.add(parent.id, parent.code.replace(old, new, 1), plan)

    def record_run(self, node_id: int, run: RunRecord) -> SolutionNode:
        node = self.get(node_id)
        node.runs += 1
        node.metric, node.submission_valid, node.error = run.metric, run.submission_valid, run.error
        if node.status != "invalidated":
            node.status = "ok" if run.ok else "failed"
        return node

    def invalidate(self, node_id: int, reason: str) -> SolutionNode:
        if not reason.strip():
            raise TreeError("give the reason the node is invalid (it is kept as evidence)")
        node = self.get(node_id)
        node.status, node.invalid_reason = "invalidated", reason.strip()
        if self.answer == node.id:
            self.answer = None
        return node

    def commit(self, node_id: int, submission: str) -> SolutionNode:
        node = self.get(node_id)
        if node.status != "ok":
            why = (
                f" ({node.invalid_reason or node.error})"
                if node.invalid_reason or node.error
                else ""
            )
            raise TreeError(
                f"node {node_id} is {node.status}{why}: only an executed node with a "
                "validation score and a valid submission can be the answer"
            )
        node.submission = submission
        self.answer = node.id
        return node

    def listing(self) -> str:
        if not self.nodes:
            return "The tree is empty: write_full_code starts a root."
        head = f"{len(self.nodes)} node(s); selected: {self.selected}; answer: {self.answer}"
        return "\n".join([head, *(n.line() for n in self.nodes.values())])


def run_header(node: SolutionNode, rows: int | None) -> str:
    """The first line of execute_code's observation (what `replay` reads back)."""
    parts = [f"node {node.id}: {'ok' if node.status == 'ok' else 'failed'}"]
    if node.metric is not None:
        parts.append(f"validation_score={node.metric!r}")
    parts.append(f"submission {'valid' if node.submission_valid else 'invalid'}")
    tail = f" ({rows} rows)" if rows is not None and node.submission_valid else ""
    return ", ".join(parts) + tail + ";" + (f" {node.error}" if node.error else "")


@dataclass(frozen=True)
class Call:
    """One tool call of an episode as recorded: name, arguments, observation, error."""

    name: str
    arguments: dict[str, Any]
    observation: str
    error: str | None = None


def replay(calls: Iterable[Call]) -> SolutionTree:
    """The tree an episode built, from its recorded calls (failed calls changed nothing)."""
    tree = SolutionTree()
    for call in calls:
        if call.error is not None:
            continue
        args = call.arguments
        try:
            _apply(tree, call, args)
        except (TreeError, KeyError, TypeError, ValueError):
            continue  # not a call the tools accepted (it would carry an error)
    return tree


def _apply(tree: SolutionTree, call: Call, args: dict[str, Any]) -> None:
    if call.name == "write_full_code":
        tree.add_root(args["code"], args.get("plan", ""))
    elif call.name == "patch_code":
        tree.patch(int(args["node_id"]), args["old"], args["new"], args.get("plan", ""))
    elif call.name == "select_node":
        tree.selected = tree.get(int(args["node_id"])).id
    elif call.name == "invalidate_node":
        tree.invalidate(int(args["node_id"]), args["reason"])
    elif call.name == "execute_code":
        match = _HEADER.search(call.observation)
        if match is None:
            return
        metric = match["metric"]
        tree.record_run(
            int(match["id"]),
            RunRecord(
                ok=match["status"] == "ok",
                metric=float(metric) if metric is not None else None,
                submission_valid=match["sub"] == "valid",
                error=match["error"].strip() or None,
            ),
        )
    elif call.name == "update_answer":
        _, _, text = call.observation.partition(SUBMISSION_MARK)
        tree.commit(int(args["node_id"]), text)


def parse_arguments(raw: str | dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as a dict (recorded calls keep them as JSON text)."""
    if isinstance(raw, dict):
        return raw
    value = json.loads(raw or "{}")
    return value if isinstance(value, dict) else {}
