"""The one verifier of the molecules domain: it recomputes the answer with RDKit.

`molecule_answer` recomputes the expected answer from the task's molecules and constraints
(never from the stored `task.answer`) and compares it with the final answer, each line as a
canonical SMILES: a filter answer as a set, a rank answer in order, a pair answer as one
molecule. A line RDKit cannot parse fails the answer. `molecules_examined` (a process check)
passes when a successful tool call read every molecule the task shows.
"""

from __future__ import annotations

from typing import Any

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.molecules.constraints import Constraint
from longhorizon.domains.molecules.tasks import ANSWER, EXAMINED, pair_answer, ranked
from longhorizon.domains.spec import check_verifiers
from longhorizon.tools.chem import ChemError, canonical

VERIFIERS = frozenset({ANSWER, EXAMINED})


def expected(task: Task) -> list[str]:
    """The answer recomputed with RDKit from the task's metadata (SMILES as shown)."""
    meta = task.metadata
    molecules: list[str] = list(meta["molecules"])
    if meta["kind"] == "filter":
        constraints = [Constraint.model_validate(c) for c in meta["constraints"]]
        return [s for s in molecules if all(c.holds(s) for c in constraints)]
    if meta["kind"] == "rank":
        return ranked(meta, molecules)
    if meta["kind"] == "pair":
        return [pair_answer(meta["direction"], molecules)]
    raise ValueError(f"task {task.id}: unknown molecules task kind {meta['kind']!r}")


def answer_lines(answer: str | None) -> list[str]:
    return [line.strip() for line in (answer or "").splitlines() if line.strip()]


def _canonical_lines(lines: list[str]) -> list[str] | None:
    try:
        return [canonical(line) for line in lines]
    except ChemError:
        return None


def check_answer(task: Task, answer: str | None) -> Verdict:
    want = [canonical(s) for s in expected(task)]
    got = _canonical_lines(answer_lines(answer))
    if task.metadata["kind"] == "filter":
        passed = got is not None and len(got) == len(set(got)) and set(got) == set(want)
    else:
        passed = got == want
    details: dict[str, Any] = {"expected": want, "got": got, "kind": task.metadata["kind"]}
    if got is None:
        details["error"] = "a line of the answer is not a valid SMILES"
    return Verdict(verifier=ANSWER, passed=passed, score=float(passed), details=details)


def examined(task: Task, trajectory: Trajectory) -> Verdict:
    seen = {ref for step in trajectory.steps if step.error is None for ref in step.state_refs}
    missing = [ref for ref in task.evidence if ref not in seen]
    score = 1.0 - len(missing) / len(task.evidence) if task.evidence else 1.0
    return Verdict(verifier=EXAMINED, passed=not missing, score=score, details={"missing": missing})


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The task's verdicts (both checks when it names none)."""
    check_verifiers(task, "molecules", VERIFIERS)
    names = [s.name for s in task.verifiers] or [ANSWER, EXAMINED]
    return [
        check_answer(task, trajectory.final_answer) if n == ANSWER else examined(task, trajectory)
        for n in names
    ]
