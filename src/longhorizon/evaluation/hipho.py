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
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import BenchmarkDataMissing, benchmark_dir
from longhorizon.domains.science.answers import (
    GREEK,
    latex_to_text,
    parse_formula,
    parse_quantity,
    strip_boxed,
)
from longhorizon.domains.science.tasks import REL_TOL
from longhorizon.domains.science.verify import check_numeric, check_symbolic
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.metrics import ACCURACY, Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import per_item, single_turn
from longhorizon.evaluation.types import ItemResult

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
# names latex_to_text leaves that are functions or constants, not symbols
_FUNCTIONS = frozenset(
    [
        "sqrt",
        "sin",
        "cos",
        "tan",
        "cot",
        "asin",
        "acos",
        "atan",
        "exp",
        "log",
        "sinh",
        "cosh",
        "tanh",
        "pi",
    ]
)
# multi-letter names that stay whole (greek letters as latex_to_text writes them, and hbar)
_KEPT = frozenset(("hbar", *GREEK))
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]*\s*(\([^()]*\))?\s*")  # "x", "x_0", "p(R)"
# vectors, derivatives and absolute values: the science reader has no form for them
_UNREADABLE = re.compile(r"\\(mathbf|hat|vec|dot|ddot|partial)|\\frac\{d|\|")


@dataclass(frozen=True)
class Part:
    """One answer of a question, ready for the science verifier."""

    kind: str  # "numeric" or "symbolic"
    params: dict[str, Any]  # check_numeric's or check_symbolic's params
    points: float
    reference: str


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


def prepare(text: str) -> str:
    """LaTeX the science reader lacks, made plain: the last \\boxed{}, \\approx as "=", \\%,
    the micro prefix, \\hbar, \\cot, \\lambda (a Python keyword), subscripts that end a
    name ("k_{B}T" is k_B T) and e^{...} with letters in the exponent as exp."""
    text = strip_boxed(text).replace("\\approx", "=").replace("\\%", "%")
    text = re.sub(r"\\mu\s*(?=\\mathrm|\\text|[A-Za-z])", "u", text)
    text = re.sub(r"\\(?:mathrm|text|rm|mathit)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"_\{([^{}]*)\}", r"_\1 ", text)
    text = re.sub(r"(?<![A-Za-z\\])e\s*\^\s*\{(?=[^{}]*[A-Za-z])", "\\\\exp{", text)
    text = text.replace("\\hbar", " hbar ").replace("\\cot", " cot ")
    text = re.sub(r"\\[Bb]ig+[lr]?", "", text)
    return re.sub(r"\\lambda(?![A-Za-z])", " lamda", text)


def normalise(text: str) -> str:
    """A formula as sympy-readable text: `prepare`, the science reader's `latex_to_text`,
    then multi-letter names split into letters ("mc^2" is m c^2) unless they are greek,
    functions or subscripted. Applied alike to references and responses."""
    plain = latex_to_text(prepare(text)).replace("[", "(").replace("]", ")")
    return _IDENT.sub(_split_name, plain)


def _split_name(match: re.Match[str]) -> str:
    name = match.group(0)
    if name in _FUNCTIONS or name in _KEPT or "_" in name or len(name) == 1:
        return name
    if name.startswith(tuple(_KEPT)) or not name.isalpha():
        return name
    return " " + " ".join(name) + " "


def symbols_of(expr_text: str) -> list[str]:
    """The symbol names of a normalised expression (right side of its last "=")."""
    side = expr_text.split("=")[-1]
    return sorted({n for n in _IDENT.findall(side) if n not in _FUNCTIONS})


def _numeric_part(answer: str, unit: str | None, points: float) -> Part | None:
    text = latex_to_text(prepare(answer))
    span = re.fullmatch(r"\s*\(?\[\s*([^,\]]+),\s*([^\]]+)\]\)?\s*(.*)", text.split("=")[-1])
    rel_tol = REL_TOL
    if span:  # a range [a, b]: its middle, with a tolerance that covers both ends
        lo, hi = parse_quantity(span.group(1)), parse_quantity(span.group(2))
        if lo is None or hi is None:
            return None
        value, given = (lo[0] + hi[0]) / 2, span.group(3).strip() or hi[1]
        rel_tol = max(REL_TOL, abs(hi[0] - lo[0]) / 2 / abs(value) + REL_TOL)
    elif (parsed := parse_quantity(text)) is not None:
        value, given = parsed
    else:
        constant = parse_formula(text, [])
        if constant is None or constant.free_symbols:
            return None
        value, given = float(constant), ""
    want = latex_to_text(prepare(unit)).replace(" ", "") if unit else given.replace(" ", "")
    want = {"%": "percent", "degrees": "degree", "radians": "radian"}.get(want, want)
    params = {"value": value, "unit": want, "rel_tol": rel_tol}
    if not check_numeric(f"{value} {want}", params).passed:  # the unit is not one pint reads
        return None
    return Part("numeric", params, points, answer)


def _symbolic_part(answer: str, points: float) -> Part | None:
    if _UNREADABLE.search(answer):
        return None
    text = normalise(answer)
    names, expr = symbols_of(text), text.split("=")[-1].strip()
    left = text.split("=")[0] if "=" in text else ""
    if "\\" in text or (not names and left and not _NAME.fullmatch(left)):
        return None  # a LaTeX command we cannot read, or an equation "f(x, y) = 0"
    params: dict[str, Any] = {"symbols": names, "expr": expr}
    if re.search(r"\d\.\d", expr):  # rounded coefficients: compare within the tolerance
        params["rel_tol"] = REL_TOL
    if parse_formula(expr, names) is None or not check_symbolic(expr, params).passed:
        return None
    return Part("symbolic", params, points, answer)


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


def read_item(row: dict[str, Any]) -> PhysicsItem | str:
    """The item, or the reason it is left out."""
    reason = exclusion(row)
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
            _numeric_part(answer, unit, float(pts))
            if kind == NUMERIC
            else _symbolic_part(answer, float(pts))
        )
        if part is None:
            return UNREAD
        parts.append(part)
    return PhysicsItem(row["id"], row["context"], row["question"], tuple(parts))


def read_folder(folder: Path) -> tuple[list[PhysicsItem], dict[str, Any]]:
    """Scorable items (by file name, then file order) and the counts of what was left out."""
    items: list[PhysicsItem] = []
    reasons: Counter[str] = Counter()
    for path in sorted(folder.glob("*.json")):
        for row in json.loads(path.read_text(encoding="utf-8"))[1:]:  # [0]: information
            got = read_item(row)
            if isinstance(got, str):
                reasons[got] += 1
            else:
                items.append(got)
    total = len(items) + sum(reasons.values())
    excluded = {r: reasons[r] for r in EXCLUSIONS if reasons[r]}
    return items, {"questions": total, "scorable": len(items), "excluded": excluded}


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    folder = options.data_dir / NAME if options.data_dir else benchmark_dir() / NAME
    if not folder.is_dir():
        raise BenchmarkDataMissing(f"{folder} is missing from the benchmark folder")
    items, info = read_folder(folder)
    return Loaded(limited(items, options.limit), {"data": str(folder), **info})


def item_id(item: PhysicsItem) -> str:
    return item.id


def boxes(response: str) -> list[str]:
    """The contents of every \\boxed{...} of a response, in order (braces matched)."""
    found, at = [], response.find("\\boxed{")
    while at >= 0:
        depth, start = 0, at + len("\\boxed")
        for i in range(start, len(response)):
            depth += {"{": 1, "}": -1}.get(response[i], 0)
            if depth == 0:
                found.append(response[start + 1 : i])
                break
        at = response.find("\\boxed{", at + 1)
    return found


def score_item(item: PhysicsItem, response: str, seed: int, meta: dict[str, Any]) -> ItemResult:
    answers = boxes(response)[-len(item.parts) :]
    answers += [""] * (len(item.parts) - len(answers))
    passed = []
    for part, answer in zip(item.parts, answers, strict=True):
        check = check_numeric if part.kind == "numeric" else check_symbolic
        text = normalise(answer) if part.kind == "symbolic" else latex_to_text(prepare(answer))
        passed.append(bool(answer) and check(text, part.params).passed)
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


run = single_turn(NAME, per_item(score_item))

BENCH = Bench(
    name=NAME,
    metrics=(POINTS, ACCURACY),
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="HiPhO text-only questions with numeric or symbolic answers (science verifier)",
)
