"""FrontierScience (`frontierscience/frontierscience.csv`, 160 problems): olympiad answers
matched, then judged; research solutions graded on their rubric by an LLM judge.

Each row has `problem` (which carries its own answer instructions: olympiad problems ask for
a last line "FINAL ANSWER ..."), `answer`, `subject` (physics, chemistry, biology),
`task_group_id` and `category`. The prompt is the problem as written.

- **Olympiad** (100): the final answer is the text after the response's last
  "FINAL ANSWER" (else its last \\boxed{}). When our reader parses the reference (a number
  with units, or a formula inside one LaTeX math span; not prose, vectors, equations between
  expressions, lists or reactions), the science verifier checks the answer: within 1%
  relative after unit conversion, or sympy-equivalent over the reference's symbols. A match
  scores 1. Anything else (no match, or a reference we cannot read) goes to the judge's
  answer-equivalence verdict; without a judge the item is unscored (`judge.NO_JUDGE`).
- **Research** (60): `answer` is a rubric, lines "Points: X, Item: ..." (10 points per
  problem). The judge awards points per item; the score is points earned / possible.
  Without a judge these problems are not run (no answer could be scored) and are counted
  under `excluded` in `info`.

Metrics: `score` (the headline: mean item score over both categories), `olympiad`
(accuracy) and `research` (rubric points earned / possible), each with the bootstrap over
items; unscored items enter none of them and are counted per seed in `BenchResult.unscored`.
Item ids are the `task_group_id`s; one id appears on two identical rows, and its second
occurrence is `<id>-2` (`info["duplicate_ids"]`). The data is for evaluation only: never
train on it (the contamination audit indexes the whole benchmark folder, this file included).
"""

from __future__ import annotations

import csv
import html
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import BenchmarkDataMissing, benchmark_dir
from longhorizon.domains.science.answers import latex_to_text, parse_quantity
from longhorizon.evaluation.answer_match import (
    Part,
    boxes,
    numeric_part,
    part_passes,
    prepare,
    symbolic_part,
)
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.judge import (
    NO_JUDGE,
    NO_JUDGE_MESSAGE,
    Judge,
    RubricItem,
    Unscored,
    judge_info,
)
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import judged
from longhorizon.evaluation.types import ItemResult

NAME = "frontierscience"
FILE = "frontierscience.csv"
OLYMPIAD, RESEARCH = "olympiad", "research"
NEEDS_JUDGE = "research rubric (needs a judge)"  # the exclusion reason without one
_RUBRIC_LINE = re.compile(r"^Points:\s*(\d+(?:\.\d+)?)\s*,\s*Item:\s*", re.MULTILINE)
_FINAL = re.compile(r"FINAL\s+ANSWER\s*[:：]?", re.IGNORECASE)
_MATH = re.compile(r"\\\((.*?)\\\)|\\\[(.*?)\\\]|\$\$(.*?)\$\$|\$(.*?)\$", re.DOTALL)
# what the reader must not take as one formula: vectors, derivatives, brackets, relations
# other than "=", arrows (reactions), lists and tuples, and "!" (a typo for "\exp" in one)
_NOT_A_FORMULA = re.compile(
    r"\\(vec|overrightarrow|hat|dot|ddot|partial|langle|mathbf|to|rightarrow|leftarrow|"
    r"rightleftharpoons|geq?|leq?|neq)(?![A-Za-z])|[<>,;|!]|\\frac\{d"
)
_NAME = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]*\s*(\([^()]*\))?\s*")  # "T", "T_1", "f(y)"
_TAIL_CHARS = 3000  # the judge sees this much of a response without a final answer line


@dataclass(frozen=True)
class FrontierItem:
    id: str
    category: str  # OLYMPIAD or RESEARCH
    subject: str
    problem: str
    answer: str  # the olympiad reference, or the research rubric as written
    reference: Part | None = None  # olympiad: the reference as our reader parsed it
    rubric: tuple[RubricItem, ...] = ()  # research

    @property
    def prompt(self) -> str:
        return self.problem


def parse_rubric(text: str) -> tuple[RubricItem, ...]:
    """The items of a research rubric: each "Points: X, Item: ..." up to the next one."""
    starts = list(_RUBRIC_LINE.finditer(text))
    if not starts or text[: starts[0].start()].strip():
        raise ValueError(f"a rubric starts with 'Points: X, Item:', not {text[:60]!r}")
    ends = [m.start() for m in starts[1:]] + [len(text)]
    return tuple(
        RubricItem(float(m.group(1)), text[m.end() : end].strip())
        for m, end in zip(starts, ends, strict=True)
    )


def unwrap(text: str) -> str | None:
    """An answer as one piece of LaTeX or plain text: markdown and escaping removed, and the
    content of its math span when it has one; None when it has several, or prose around one."""
    text = html.unescape(text).replace("`", "").replace("**", "")
    text = re.sub(r"\\\\(?=[A-Za-z()\[\]{}_])", r"\\", text)
    text = text.replace("\\_", "_").replace("\\-", "-")  # markdown escapes
    spans = _MATH.findall(text)
    if spans:
        if len(spans) != 1 or _MATH.sub("", text).strip(" \n.,;:'\"，。"):
            return None
        text = next((s for s in spans[0] if s), "")  # an empty span, \(\)
    return text.strip().rstrip(".").strip() or None


def reference_part(answer: str) -> Part | None:
    """An olympiad reference our reader can check answers against, or None (judge only)."""
    text = unwrap(answer)
    if text is None or _NOT_A_FORMULA.search(text):
        return None
    if parse_quantity(latex_to_text(prepare(text))) is not None:  # starts with a number
        return numeric_part(text, None, 1.0)
    in_math = bool(_MATH.search(html.unescape(answer))) or "\\" in text
    left = text.split("=")[0] if "=" in text else ""
    if not in_math or text.count("=") > 1 or (left and not _NAME.fullmatch(latex_to_text(left))):
        return None  # prose, or an equation whose left side is not a name
    return symbolic_part(text, 1.0)


def final_answer(response: str) -> str | None:
    """The text after the last "FINAL ANSWER", else the last \\boxed{}; None if neither."""
    found = list(_FINAL.finditer(response))
    if found:
        text = response[found[-1].end() :].strip().strip("*").strip()
        return text or None
    boxed = boxes(response)
    return boxed[-1].strip() if boxed else None


def answer_matches(item: FrontierItem, answer: str | None) -> bool:
    if item.reference is None or answer is None:
        return False
    inner = boxes(answer)
    text = unwrap(inner[-1] if inner else answer)
    return text is not None and part_passes(item.reference, text)


def read_rows(path: Path) -> tuple[list[FrontierItem], list[str]]:
    """Every row as an item (file order), and the ids that had to be made unique."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    seen: Counter[str] = Counter()
    items, duplicates = [], []
    for row in rows:
        base = row["task_group_id"]
        seen[base] += 1
        if seen[base] > 1:
            duplicates.append(base)
        item_id = base if seen[base] == 1 else f"{base}-{seen[base]}"
        items.append(_item(item_id, row))
    return items, duplicates


def _item(item_id: str, row: dict[str, str]) -> FrontierItem:
    category = row["category"]
    base: dict[str, Any] = {
        "id": item_id,
        "category": category,
        "subject": row["subject"],
        "problem": row["problem"],
        "answer": row["answer"],
    }
    if category == RESEARCH:
        return FrontierItem(**base, rubric=parse_rubric(row["answer"]))
    if category != OLYMPIAD:
        raise ValueError(f"{item_id}: unknown category {category!r}")
    return FrontierItem(**base, reference=reference_part(row["answer"]))


def data_path(options: EvalOptions) -> Path:
    folder = options.data_dir if options.data_dir is not None else benchmark_dir()
    path = folder / NAME / FILE
    if not path.is_file():
        raise BenchmarkDataMissing(f"{path} is missing from the benchmark folder")
    return path


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    """Every problem, research ones only with a judge; what was read, in `info`."""
    path = data_path(options)
    every, duplicates = read_rows(path)
    items = [i for i in every if i.category == OLYMPIAD or options.judge is not None]
    olympiad = [i for i in every if i.category == OLYMPIAD]
    readers = Counter(i.reference.kind if i.reference else "judge only" for i in olympiad)
    info: dict[str, Any] = {
        "data": str(path),
        "questions": len(every),
        "scorable": len(items),
        "categories": dict(Counter(i.category for i in every)),
        "olympiad_references": dict(sorted(readers.items())),
        "duplicate_ids": duplicates,
        "judge": judge_info(options.judge),
    }
    if len(items) < len(every):
        info["excluded"] = {NEEDS_JUDGE: len(every) - len(items)}
    return Loaded(limited(items, options.limit), info)


def item_id(item: FrontierItem) -> str:
    return item.id


async def score_item(
    judge: Judge | None, item: FrontierItem, response: str, seed: int, meta: dict[str, Any]
) -> ItemResult:
    details: dict[str, Any] = {"category": item.category, "subject": item.subject}
    details.update(response=response, **meta)
    if item.category == RESEARCH:
        return await _score_research(judge, item, seed, details)
    return await _score_olympiad(judge, item, seed, details)


async def _score_olympiad(
    judge: Judge | None, item: FrontierItem, seed: int, details: dict[str, Any]
) -> ItemResult:
    response = str(details["response"])
    answer = final_answer(response)
    details["final_answer"] = answer
    if answer_matches(item, answer):
        return _result(item, seed, 1.0, answer, {**details, "method": "match"})
    if judge is None:
        return _unscored(item, seed, Unscored(NO_JUDGE, NO_JUDGE_MESSAGE), answer, details)
    shown = answer if answer is not None else response[-_TAIL_CHARS:]
    reference = unwrap(item.answer) or html.unescape(item.answer).strip()
    verdict = await judge.equivalent(item.problem, reference, shown)
    if isinstance(verdict, Unscored):
        return _unscored(item, seed, verdict, answer, details)
    details.update(method="judge", judge_reply=verdict.reply)
    return _result(item, seed, float(verdict.correct), answer, details)


async def _score_research(
    judge: Judge | None, item: FrontierItem, seed: int, details: dict[str, Any]
) -> ItemResult:
    total = sum(r.points for r in item.rubric)
    details["total"] = total
    if judge is None:  # not loaded without a judge; here only if a caller passes one in
        return _unscored(item, seed, Unscored(NO_JUDGE, NO_JUDGE_MESSAGE), None, details)
    grade = await judge.grade(item.problem, item.rubric, str(details["response"]))
    if isinstance(grade, Unscored):
        return _unscored(item, seed, grade, None, details)
    details.update(
        method="rubric", awarded=list(grade.awarded), earned=grade.earned, judge_reply=grade.reply
    )
    return _result(item, seed, grade.earned / total, None, details)


def _result(
    item: FrontierItem, seed: int, score: float, answer: str | None, details: dict[str, Any]
) -> ItemResult:
    return ItemResult(
        bench=NAME,
        item_id=item.id,
        seed=seed,
        score=score,
        prediction=answer,
        reference=item.answer,
        details=details,
    )


def _unscored(
    item: FrontierItem,
    seed: int,
    why: Unscored,
    answer: str | None,
    details: dict[str, Any],
) -> ItemResult:
    result = _result(item, seed, 0.0, answer, {**details, "unscored_reason": why.message})
    return result.model_copy(update={"unscored": why.kind})


def _in(category: str, value: Callable[[ItemResult], float]) -> Callable[[ItemResult], float]:
    """A metric value counted only on items of one category (0 elsewhere)."""
    return lambda r: value(r) if r.details.get("category") == category else 0.0


def _score(r: ItemResult) -> float:
    return r.score


def _one(r: ItemResult) -> float:
    return 1.0


def _earned(r: ItemResult) -> float:
    return float(r.details["earned"])


def _total(r: ItemResult) -> float:
    return float(r.details["total"])


SCORE = Metric(
    "score",
    ((1.0, Ratio()),),
    "mean item score: olympiad 0/1, research the share of its rubric points",
)
OLYMPIAD_ACCURACY = Metric(
    OLYMPIAD,
    ((1.0, Ratio(_in(OLYMPIAD, _score), _in(OLYMPIAD, _one))),),
    "olympiad accuracy (answer match, then the judge)",
)
RESEARCH_POINTS = Metric(
    RESEARCH,
    ((1.0, Ratio(_in(RESEARCH, _earned), _in(RESEARCH, _total))),),
    "research rubric points earned / possible (judge)",
)

run = judged(NAME, score_item)

BENCH = Bench(
    name=NAME,
    metrics=(SCORE, OLYMPIAD_ACCURACY, RESEARCH_POINTS),
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="FrontierScience olympiad (answer match, then an LLM judge) and research "
    "(rubric, LLM judge)",
)
