"""Verdicts of the instruction domain: IFEval instructions and long-context choice letters.

One verifier, three uses: the same verdicts score evaluations, shape RL rewards (the
aggregate's score is the share of instructions followed) and filter synthesised tasks.
"""

from __future__ import annotations

import re

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.spec import check_verifiers
from longhorizon.verifiers.ifeval import build_checker, follows_loose, follows_strict

IFEVAL = "ifeval"
CHOICE = "choice"
AGGREGATE = "ifeval_all"
VERIFIERS = frozenset({IFEVAL, CHOICE})
_LETTER = re.compile(r"^[\s(\[*]*([A-Za-z])[\s)\].:*]*$")

Answer = str | Trajectory | None  # a final answer, or a trajectory (the harness passes these)


def final_answer(answer: Answer) -> str | None:
    return answer.final_answer if isinstance(answer, Trajectory) else answer


def ifeval_params(task: Task) -> tuple[list[str], list[dict]]:
    """The instruction ids and kwargs of the task's ifeval verifier."""
    for spec in task.verifiers:
        if spec.name == IFEVAL:
            return list(spec.params["instruction_id_list"]), list(spec.params["kwargs"])
    raise ValueError(f"task {task.id} has no {IFEVAL} verifier")


def verify_instruction(task: Task, response: Answer) -> list[Verdict]:
    """One strict verdict per instruction, then the aggregate "ifeval_all" verdict."""
    ids, kwargs_list = ifeval_params(task)
    text = final_answer(response) or ""
    verdicts: list[Verdict] = []
    for index, (iid, kwargs) in enumerate(zip(ids, kwargs_list, strict=True)):
        checker = build_checker(iid, kwargs, task.instruction)
        strict, loose = follows_strict(checker, text), follows_loose(checker, text)
        details = {"index": index, "kwargs": kwargs, "strict": strict, "loose": loose}
        verdicts.append(
            Verdict(verifier=f"ifeval:{iid}", passed=strict, score=float(strict), details=details)
        )
    strict_all = [v.details["strict"] for v in verdicts]
    loose_all = [v.details["loose"] for v in verdicts]
    share = sum(strict_all) / len(strict_all) if strict_all else 0.0
    details = {
        "instruction_id_list": ids,
        "strict": strict_all,
        "loose": loose_all,
        "strict_all": all(strict_all),
        "loose_all": all(loose_all),
        "loose_score": sum(loose_all) / len(loose_all) if loose_all else 0.0,
    }
    verdicts.append(
        Verdict(verifier=AGGREGATE, passed=all(strict_all), score=share, details=details)
    )
    return verdicts


def strict_passes(task: Task, response: str) -> bool:
    """Every instruction followed strictly: the synthesis filter (no loose pass needed)."""
    ids, kwargs_list = ifeval_params(task)
    return all(
        follows_strict(build_checker(iid, kwargs, task.instruction), response)
        for iid, kwargs in zip(ids, kwargs_list, strict=True)
    )


def choice_letter(answer: str | None) -> str | None:
    """The option letter of an answer such as "B", "(b)" or "B."; None otherwise."""
    if answer is None:
        return None
    match = _LETTER.match(answer)
    return match.group(1).upper() if match else None


def verify_choice(task: Task, answer: Answer) -> list[Verdict]:
    """Exact letter match against the task's answer."""
    answer = final_answer(answer)
    letter = choice_letter(answer)
    passed = letter is not None and letter == (task.answer or "").upper()
    details = {"answer": answer, "letter": letter, "target": task.answer}
    return [Verdict(verifier=CHOICE, passed=passed, score=float(passed), details=details)]


def verify_task(task: Task, answer: Answer) -> list[Verdict]:
    """The verdicts of any task of this domain, by its verifier specs (harness `verify=`).

    A task names exactly one of `ifeval` (composed instructions) and `choice` (long-context
    multiple choice); no spec, or a name this domain does not define, is an error.
    """
    check_verifiers(task, "instruction", VERIFIERS)
    names = {spec.name for spec in task.verifiers}
    if IFEVAL in names:
        return verify_instruction(task, answer)
    if CHOICE in names:
        return verify_choice(task, answer)
    raise ValueError(f"task {task.id} has no verifier of the instruction domain")


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The domain's checks (`DomainSpec.verdicts`, which `DomainSpec.verify` guards)."""
    return verify_task(task, trajectory)
