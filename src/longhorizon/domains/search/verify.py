"""The one verifier of the search domain: normalised exact match and the evidence path.

The evidence path passes when every page of E_q was visited; search results do not count,
since a snippet is not a read page. A task with no verifier specs gets both checks; a task
naming a verifier this domain does not define is an error (`UnknownVerifierError`).
"""

from __future__ import annotations

from collections.abc import Iterable

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.spec import check_verifiers
from longhorizon.verifiers.answer import exact_match

READ_TOOLS = frozenset({"visit"})
EXACT_MATCH = "exact_match"
EVIDENCE_PATH = "evidence_path"
VERIFIERS = frozenset({EXACT_MATCH, EVIDENCE_PATH})
DEFAULT_VERIFIERS = (EXACT_MATCH, EVIDENCE_PATH)  # a task without specs is checked by both


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
        verifier=EVIDENCE_PATH,
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
    check_verifiers(task, "search", VERIFIERS)
    if isinstance(trajectory_or_answer, Trajectory):
        answer = trajectory_or_answer.final_answer
        if consulted_page_ids is None:
            consulted_page_ids = visited_pages(trajectory_or_answer)
    else:
        answer = trajectory_or_answer
    consulted = list(consulted_page_ids or [])
    params = {s.name: s.params for s in task.verifiers}
    verdicts = []
    for name in [s.name for s in task.verifiers] or DEFAULT_VERIFIERS:
        if name == EXACT_MATCH:
            if task.answer is None:
                raise ValueError(f"task {task.id}: exact_match needs the task's answer")
            verdicts.append(exact_match(answer, task.answer))
        else:
            pages = params.get(EVIDENCE_PATH, {}).get("pages", task.evidence)
            verdicts.append(evidence_path(pages, consulted))
    return verdicts


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The domain's checks (`DomainSpec.verdicts`, which `DomainSpec.verify` guards)."""
    return verify_search(task, trajectory)
