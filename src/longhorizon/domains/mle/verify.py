"""The one verifier of the MLE domain: the committed submission, and whether its validation
score can be trusted.

The episode's solution tree is rebuilt from its calls (`tools.mle.replay`); the committed
node is the answer, its submission the text update_answer recorded.
- `mle_submission`: a node is committed, its submission passes the grader, and its test
  score beats the declared baseline by `margin` of the reference's gain. Details carry the
  test score, the gain and the medal (bronze, silver, gold: `tools.mle.MEDALS`).
- `mle_reliable`: the committed node's validation gain exceeds its test gain by at most
  `max_gap`; a validation score far above the held-out score marks leakage or overfitting.
"""

from __future__ import annotations

from typing import Any

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.mle.tasks import RELIABLE, SUBMISSION, VERIFIERS
from longhorizon.domains.spec import check_verifiers
from longhorizon.tools.mle import (
    Call,
    SolutionTree,
    SubmissionError,
    build,
    gain,
    medal,
    parse_submission,
    replay,
    score,
)
from longhorizon.tools.mle.tree import parse_arguments

__all__ = ["grade_answer", "tree_of", "verify"]


def tree_of(trajectory: Trajectory) -> SolutionTree:
    """The solution tree the episode built."""
    return replay(
        Call(
            step.action.function.name,
            _arguments(step.action.function.arguments),
            step.observation,
            step.error,
        )
        for step in trajectory.steps
    )


def _arguments(raw: str) -> dict[str, Any]:
    try:
        return parse_arguments(raw)
    except ValueError:
        return {}


def grade_answer(task: Task, tree: SolutionTree) -> dict[str, Any]:
    """The committed node's test score, gains and medal; `error` says why there is none."""
    meta = task.metadata
    if tree.answer is None:
        return {"error": "no node was committed with update_answer"}
    node = tree.nodes[tree.answer]
    comp = build(meta["recipe"])
    try:
        preds = parse_submission(node.submission or "", comp)
    except SubmissionError as exc:
        return {"node": node.id, "error": f"invalid submission: {exc}"}
    test = score(comp, preds)
    direction = comp.direction
    test_gain = gain(test, meta["baseline"], meta["reference"], direction)
    out: dict[str, Any] = {
        "node": node.id,
        "test_score": test,
        "validation_score": node.metric,
        "baseline": meta["baseline"],
        "reference": meta["reference"],
        "gain": test_gain,
        "medal": medal(test_gain),
    }
    if node.metric is not None:
        out["validation_gain"] = gain(node.metric, meta["baseline"], meta["reference"], direction)
    return out


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    check_verifiers(task, "mle", VERIFIERS)
    tree = tree_of(trajectory)
    graded = grade_answer(task, tree)
    details = {**graded, "nodes": len(tree.nodes), "roots": _roots(tree)}
    if "error" in graded:
        return [
            Verdict(verifier=name, passed=False, score=0.0, details=details)
            for name in (SUBMISSION, RELIABLE)
        ]
    margin, max_gap = task.metadata["margin"], task.metadata["max_gap"]
    beat = graded["gain"] >= margin
    gap = graded.get("validation_gain", float("inf")) - graded["gain"]
    trusted = gap <= max_gap
    verdicts = {
        SUBMISSION: Verdict(
            verifier=SUBMISSION,
            passed=beat,
            score=max(0.0, min(1.0, graded["gain"])),
            details={**details, "margin": margin},
        ),
        RELIABLE: Verdict(
            verifier=RELIABLE,
            passed=trusted,
            score=float(trusted),
            details={**details, "optimism": gap, "max_gap": max_gap},
        ),
    }
    names = [s.name for s in task.verifiers] or [SUBMISSION, RELIABLE]
    return [verdicts[n] for n in names]


def _roots(tree: SolutionTree) -> int:
    return sum(node.parent is None for node in tree.nodes.values())
