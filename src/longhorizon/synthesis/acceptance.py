"""The five acceptance rules. A task is accepted only if every rule holds; each failing rule
gives one rejection reason, prefixed by the rule's name, which goes back to the proposer.

Which verifiers exist and which of them judge the process (not the answer) is the domain's
to say (`Domain.verifiers`, `Domain.process_verifiers`); nothing here names a domain.
"""

from __future__ import annotations

from collections.abc import Set

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Status, Trajectory

__all__ = ["answer_right", "consulted", "rejection_reasons", "unverifiable"]


def consulted(traj: Trajectory) -> set[str]:
    """Evidence ids observed by successful tool calls along the trajectory."""
    return {ref for step in traj.steps if step.error is None for ref in step.state_refs}


def answer_right(traj: Trajectory, process_verifiers: Set[str] = frozenset()) -> bool:
    """The answer verdicts passed (process verdicts like the evidence path are not asked for)."""
    answer = [v for v in traj.verdicts if v.verifier not in process_verifiers]
    return bool(answer) and all(v.passed for v in answer)


def unverifiable(task: Task, known: Set[str]) -> str | None:
    """The rejection reason of a task with no verifier its domain knows; None if verifiable."""
    unknown = sorted({v.name for v in task.verifiers} - set(known))
    if not task.verifiers or unknown:
        return f"unverifiable: no known verifier (unknown: {unknown})"
    return None


def rejection_reasons(
    task: Task,
    traj: Trajectory,
    guess: Trajectory | None,
    min_tool_steps: int,
    process_verifiers: Set[str] = frozenset(),
) -> list[str]:
    reasons = []
    if traj.status is not Status.COMPLETED or not traj.passed:
        failed = [v.verifier for v in traj.verdicts if not v.passed]
        reasons.append(f"invalid: solver {traj.status.value}, failed verifiers {failed}")
    tool_steps = sum(step.error is None for step in traj.steps)
    if tool_steps < min_tool_steps:
        reasons.append(f"uninformative: {tool_steps} tool steps < {min_tool_steps}")
    missing = sorted(set(task.evidence) - consulted(traj))
    if missing:
        reasons.append(f"uncovered: evidence never consulted {missing}")
    if guess is not None and answer_right(guess, process_verifiers):
        reasons.append("shortcut: solved without tools")
    return reasons
