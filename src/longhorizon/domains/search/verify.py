"""Verdicts of a search task: normalised exact match and the evidence path.

The evidence path passes when every page of E_q was visited; search results do not count,
since a snippet is not a read page.
"""

from __future__ import annotations

from collections.abc import Iterable

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.verifiers.answer import exact_match

READ_TOOLS = frozenset({"visit"})


def visited_pages(trajectory: Trajectory) -> list[str]:
    """Ids of the pages read successfully, in first-visit order."""
    pages: list[str] = []
    for step in trajectory.steps:
        if step.action.function.name in READ_TOOLS and step.error is None:
            pages.extend(p for p in step.state_refs if p not in pages)
    return pages


def evidence_path(required: Iterable[str], consulted: Iterable[str]) -> Verdict:
    required = list(required)
    seen = set(consulted)
    missing = [p for p in required if p not in seen]
    score = 1.0 - len(missing) / len(required) if required else 1.0
    return Verdict(
        verifier="evidence_path",
        passed=not missing,
        score=score,
        details={"required": required, "missing": missing},
    )


def verify_search(
    task: Task,
    trajectory_or_answer: Trajectory | str | None,
    consulted_page_ids: Iterable[str] | None = None,
) -> list[Verdict]:
    """The task's verdicts; pages consulted default to the trajectory's visited pages."""
    if isinstance(trajectory_or_answer, Trajectory):
        answer = trajectory_or_answer.final_answer
        if consulted_page_ids is None:
            consulted_page_ids = visited_pages(trajectory_or_answer)
    else:
        answer = trajectory_or_answer
    consulted = list(consulted_page_ids or [])
    specs = task.verifiers or []
    names = [s.name for s in specs] or ["exact_match", "evidence_path"]
    verdicts = []
    for spec_name in names:
        if spec_name == "exact_match" and task.answer is not None:
            verdicts.append(exact_match(answer, task.answer))
        elif spec_name == "evidence_path":
            params = next((s.params for s in specs if s.name == "evidence_path"), {})
            verdicts.append(evidence_path(params.get("pages", task.evidence), consulted))
    return verdicts
