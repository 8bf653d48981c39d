"""Verify any task by its own verifier specs (V_q): evaluation, rewards and filters share it."""

from __future__ import annotations

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.verifiers.answer import exact_match


def verify_for_task(task: Task, traj: Trajectory) -> list[Verdict]:
    """Verdicts of every verifier the task names; an unknown name is an error, not a pass."""
    names = [spec.name for spec in task.verifiers]
    if not names:
        return [] if task.answer is None else [exact_match(traj.final_answer, task.answer)]
    if "ifeval" in names or "choice" in names:
        from longhorizon.domains.instruction import verify_task

        return verify_task(task, traj)
    verdicts: list[Verdict] = []
    for spec in task.verifiers:
        if spec.name == "exact_match":
            verdicts.append(exact_match(traj.final_answer, task.answer or ""))
        elif spec.name == "evidence_path":
            from longhorizon.domains.search import evidence_path, visited_pages

            required = spec.params.get("pages", task.evidence)
            verdicts.append(evidence_path(required, visited_pages(traj)))
        else:
            raise ValueError(f"task {task.id}: unknown verifier {spec.name!r}")
    return verdicts
