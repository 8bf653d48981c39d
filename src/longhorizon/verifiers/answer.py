"""Answer verifiers: normalised exact match against the task's target answer."""

from __future__ import annotations

import re
import string
import unicodedata

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str) -> str:
    """Lower case, NFKC, no punctuation, no English articles, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(answer: str | None, target: str) -> Verdict:
    passed = answer is not None and normalise_answer(answer) == normalise_answer(target)
    return Verdict(
        verifier="exact_match",
        passed=passed,
        score=float(passed),
        details={"answer": answer, "target": target},
    )


def verify_answer(task: Task, traj: Trajectory) -> list[Verdict]:
    """Exact match of the final answer; tasks without a target answer get no verdict."""
    if task.answer is None:
        return []
    return [exact_match(traj.final_answer, task.answer)]
