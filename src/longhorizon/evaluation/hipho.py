"""HiPhO (`hipho/*.json`, 403 questions from 14 physics olympiads): the text-only questions
whose every answer is a number (with or without units) or a symbolic expression.

Each file is a JSON list: an information record, then questions with `context`, `question`,
and per answer part `answer` (LaTeX in \\boxed{}), `answer_type`, `unit` and `points`.
A question is scored only when it is text-only (no figure, no image) and every part is a
"Numerical Value" or an "Expression" whose reference our reader parses; the rest are left
out and counted by reason in the result's `info` (`EXCLUSIONS`): a figure, multiple choice,
open-ended, an equation or inequality, or a reference we cannot read (vectors, tuples,
absolute values, ...).

Scoring is the science domain's verifier (`domains.science.verify`): numbers are converted
with pint to the part's unit (a bare number counts in that unit) and pass within 1% relative
(a reference range [a, b] widens the tolerance to cover it); expressions pass by sympy
equivalence over the reference's symbols. The model is asked for one \\boxed{} per part, in
order; the last k boxes of the response answer the k parts. An item's score is its share of
the parts' points (the benchmark's answer-level marking); `points` pools them over items.

Open-ended questions (text-only, with the benchmark's `marking`: criteria "Award X pt if
...") are scored only with an LLM judge (`eval --judge-base-url --judge-model`): it grades the
response on each criterion (`judge.Judge.grade`); with several alternative marking schemes
the best counts. The item's score is its share of the marking's points, and `earned` /
`total` are in the question's points, so `points` pools them with the rest. Without a judge
they stay left out as "open-ended", and `info["judge"]` says why.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import BenchmarkDataMissing, benchmark_dir
from longhorizon.domains.science.answers import strip_boxed
from longhorizon.evaluation.answer_match import (
    Part,
    boxes,
    numeric_part,
    part_passes,
    symbolic_part,
)
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.judge import (
    NO_JUDGE,
    NO_JUDGE_MESSAGE,
    Judge,
    RubricGrade,
    RubricItem,
    Unscored,
    judge_info,
)
from longhorizon.evaluation.metrics import ACCURACY, Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import judged
from longhorizon.evaluation.types import ItemResult

# Part and strip_boxed are re-exported: the answer reader moved to answer_match, callers stayed
__all__ = ["BENCH", "OpenItem", "Part", "PhysicsItem", "read_folder", "score_item", "strip_boxed"]

NAME = "hipho"
NUMERIC, EXPRESSION = "Numerical Value", "Expression"
# Why a question is left out, in the order they are checked (the first that applies counts).
FIGURE, CHOICE, OPEN, RELATION, UNREAD = (
    "figure",
    "multiple choice",
    "open-ended",
    "equation or inequality",
    "reference not parsed",
)
EXCLUSIONS = (FIGURE, CHOICE, OPEN, RELATION, UNREAD)
ANSWER_FORMAT = (
    "\n\nSolve the problem. Give each final answer in its own \\boxed{{}}, in the order asked "
    "({n} in all); state units for numerical values."
)
POINTS = Metric(
    "points",
    ((1.0, Ratio(lambda r: float(r.details["earned"]), lambda r: float(r.details["total"]))),),
    "points earned / points possible (answer-level marking)",
)
OPEN_FORMAT = "\n\nAnswer the question, explaining your reasoning."
_AWARD = re.compile(r"\bAward\s+(\d+(?:\.\d+)?)\s*pts?\b", re.IGNORECASE)


@dataclass(frozen=True)
class PhysicsItem:
    id: str
    context: str
    question: str
    parts: tuple[Part, ...]

    @property
    def prompt(self) -> str:
        body = f"{self.context.strip()}\n\n{self.question.strip()}"
        return body + ANSWER_FORMAT.format(n=len(self.parts))


@dataclass(frozen=True)
class OpenItem:
    """An open-ended question, graded by the judge on the benchmark's marking scheme(s)."""

    id: str
    context: str
    question: str
    schemes: tuple[tuple[RubricItem, ...], ...]  # alternative markings; the best counts
    points: float  # the question's points

    @property
    def prompt(self) -> str:
        return f"{self.context.strip()}\n\n{self.question.strip()}{OPEN_FORMAT}"


def marking_schemes(marking: Any) -> tuple[tuple[RubricItem, ...], ...] | None:
    """The marking as rubrics (a flat list is one scheme); None if a criterion has no
    "Award X pt" or there is no marking."""
    if not marking:
        return None
    schemes = marking if all(isinstance(m, list) for m in marking) else [marking]
    out = []
    for scheme in schemes:
        found = [(_AWARD.search(str(c)), str(c)) for c in scheme]
        if not found or any(m is None for m, _ in found):
            return None
        out.append(tuple(RubricItem(float(m.group(1)), c) for m, c in found if m is not None))
    return tuple(out)


def exclusion(row: dict[str, Any]) -> str | None:
    """Why a question is not scored, judged from its metadata (None: it may be)."""
    types = set(row["answer_type"])
    if row["modality"] != "text-only" or row["image_question"]:
        return FIGURE
    if "Multiple Choice" in types:
        return CHOICE
    if "Open-Ended" in types:
        return OPEN
    if types & {"Equation", "Inequality"}:
        return RELATION
    return None if types <= {NUMERIC, EXPRESSION} else UNREAD


def read_item(row: dict[str, Any], *, judged: bool = False) -> PhysicsItem | OpenItem | str:
    """The item, or the reason it is left out (open-ended ones are items only if `judged`)."""
    reason = exclusion(row)
    if reason == OPEN and judged:
        schemes = marking_schemes(row.get("marking"))
        if schemes is not None:
            worth = float(sum(row["points"])) or sum(r.points for r in schemes[0])
            return OpenItem(row["id"], row["context"], row["question"], schemes, worth)
    if reason is not None:
        return reason
    n = len(row["answer"])
    if len(row["answer_type"]) != n:
        return UNREAD
    units = (list(row["unit"]) + [None] * n)[:n]  # a few rows list fewer units or points
    points = (list(row["points"]) + [0.0] * n)[:n]
    parts = []
    for answer, kind, unit, pts in zip(
        row["answer"], row["answer_type"], units, points, strict=True
    ):
        part = (
            numeric_part(answer, unit, float(pts))
            if kind == NUMERIC
            else symbolic_part(answer, float(pts))
        )
        if part is None:
            return UNREAD
        parts.append(part)
    return PhysicsItem(row["id"], row["context"], row["question"], tuple(parts))


def read_folder(
    folder: Path, *, judged: bool = False
) -> tuple[list[PhysicsItem | OpenItem], dict[str, Any]]:
    """Scorable items (by file name, then file order) and the counts of what was left out;
    with `judged`, open-ended questions with a marking are items too (`info["judged"]`)."""
    items: list[PhysicsItem | OpenItem] = []
    reasons: Counter[str] = Counter()
    for path in sorted(folder.glob("*.json")):
        for row in json.loads(path.read_text(encoding="utf-8"))[1:]:  # [0]: information
            got = read_item(row, judged=judged)
            if isinstance(got, str):
                reasons[got] += 1
            else:
                items.append(got)
    total = len(items) + sum(reasons.values())
    excluded = {r: reasons[r] for r in EXCLUSIONS if reasons[r]}
    info = {"questions": total, "scorable": len(items), "excluded": excluded}
    if judged:
        info["judged"] = sum(isinstance(i, OpenItem) for i in items)
    return items, info


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    folder = options.data_dir / NAME if options.data_dir else benchmark_dir() / NAME
    if not folder.is_dir():
        raise BenchmarkDataMissing(f"{folder} is missing from the benchmark folder")
    items, info = read_folder(folder, judged=options.judge is not None)
    info = {"data": str(folder), **info, "judge": judge_info(options.judge)}
    return Loaded(limited(items, options.limit), info)


def item_id(item: PhysicsItem | OpenItem) -> str:
    return item.id


def score_item(item: PhysicsItem, response: str, seed: int, meta: dict[str, Any]) -> ItemResult:
    answers = boxes(response)[-len(item.parts) :]
    answers += [""] * (len(item.parts) - len(answers))
    passed = [part_passes(p, a) for p, a in zip(item.parts, answers, strict=True)]
    total = sum(p.points for p in item.parts)
    earned = sum(p.points for p, ok in zip(item.parts, passed, strict=True) if ok)
    return ItemResult(
        bench=NAME,
        item_id=item.id,
        seed=seed,
        score=earned / total if total else float(all(passed)),
        prediction=" | ".join(answers),
        reference=" | ".join(p.reference for p in item.parts),
        details={
            "response": response,
            "passed": passed,
            "earned": earned,
            "total": total,
            **meta,
        },
    )


async def score_open(
    judge: Judge | None, item: OpenItem, response: str, seed: int, meta: dict[str, Any]
) -> ItemResult:
    """The judge's grade on the best-scoring marking scheme, in the question's points."""
    details: dict[str, Any] = {"response": response, "total": item.points, **meta}
    if judge is None:  # not loaded without a judge; here only if a caller passes one in
        return _open_result(item, seed, 0.0, details, Unscored(NO_JUDGE, NO_JUDGE_MESSAGE))
    problem = _problem(item)
    # one scheme after another: items already run concurrently, and the order stays fixed
    grades = [await judge.grade(problem, s, response) for s in item.schemes]
    shares: list[tuple[float, int, RubricGrade]] = []
    for index, (grade, scheme) in enumerate(zip(grades, item.schemes, strict=True)):
        if isinstance(grade, Unscored):
            return _open_result(item, seed, 0.0, details, grade)
        shares.append((grade.earned / sum(r.points for r in scheme), -index, grade))
    share, index, grade = max(shares, key=lambda t: t[:2])  # the best; the first on a tie
    details.update(
        method="rubric",
        scheme=-index,
        awarded=list(grade.awarded),
        earned=share * item.points,
        judge_reply=grade.reply,
    )
    return _open_result(item, seed, share, details, None)


def _open_result(
    item: OpenItem, seed: int, score: float, details: dict[str, Any], why: Unscored | None
) -> ItemResult:
    if why is not None:
        details = {**details, "unscored_reason": why.message}
    return ItemResult(
        bench=NAME,
        item_id=item.id,
        seed=seed,
        score=score,
        details=details,
        unscored=why.kind if why is not None else None,
    )


def _problem(item: OpenItem) -> str:
    return f"{item.context.strip()}\n\n{item.question.strip()}"


async def score_any(
    judge: Judge | None,
    item: PhysicsItem | OpenItem,
    response: str,
    seed: int,
    meta: dict[str, Any],
) -> ItemResult:
    if isinstance(item, OpenItem):
        return await score_open(judge, item, response, seed, meta)
    return score_item(item, response, seed, meta)


run = judged(NAME, score_any)

BENCH = Bench(
    name=NAME,
    metrics=(POINTS, ACCURACY),
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="HiPhO text-only questions with numeric or symbolic answers (science verifier)",
)
