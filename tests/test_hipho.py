"""HiPhO: which questions are scored, and scoring with the science verifier's semantics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from longhorizon.evaluation import hipho
from longhorizon.evaluation.judge import JUDGE_UNPARSED, NO_JUDGE, NO_JUDGE_MESSAGE, open_judge
from longhorizon.evaluation.options import EvalOptions, JudgeSettings
from longhorizon.evaluation.types import ItemResult
from tests.chat_server import chat_server

needs_data = pytest.mark.usefixtures("benchmarks")  # skipped without the data; CI=true: error


def row(qid: str, answers: list[str], types: list[str], **extra: Any) -> dict[str, Any]:
    n = len(answers)
    base = {
        "id": qid,
        "context": "A ball falls.",
        "question": "Find it.",
        "answer": answers,
        "answer_type": types,
        "unit": [None] * n,
        "points": [1.0] * n,
        "modality": "text-only",
        "image_question": [],
    }
    return {**base, **extra}


ROWS = [
    row("speed", ["\\boxed{$v = 12.5$}"], ["Numerical Value"], unit=["m/s"], points=[2.0]),
    row(
        "range",
        ["\\boxed{$R = \\frac{v_0^2 \\sin 2\\theta}{g}$}", "\\boxed{$3.0 \\times 10^{3}$}"],
        ["Expression", "Numerical Value"],
        unit=[None, "$\\mathrm{J}$"],
        points=[3.0, 1.0],
    ),
    row("figure", ["\\boxed{1}"], ["Numerical Value"], modality="text+illustration figure"),
    row("choice", ["\\boxed{B}"], ["Multiple Choice"]),
    row("open", [""], ["Open-Ended"]),
    row("eq", ["\\boxed{$x^2 + y^2 = R^2$}"], ["Equation"]),
    row("vector", ["\\boxed{$\\mathbf{E} = \\frac{q}{r^2}$}"], ["Expression"]),
]


@pytest.fixture()
def items(tmp_path: Path) -> dict[str, hipho.PhysicsItem]:
    folder = tmp_path / "hipho"
    folder.mkdir()
    (folder / "Toy_2025.json").write_text(json.dumps([{"information": "None."}, *ROWS]))
    loaded = hipho.load_items(EvalOptions(data_dir=tmp_path), Path("."))
    assert loaded.info["questions"] == len(ROWS) and loaded.info["scorable"] == 2
    assert loaded.info["excluded"] == {
        "figure": 1,
        "multiple choice": 1,
        "open-ended": 1,
        "equation or inequality": 1,
        "reference not parsed": 1,
    }
    return {i.id: i for i in loaded.items}


def score(item: hipho.PhysicsItem, response: str) -> tuple[float, list[bool]]:
    result = hipho.score_item(item, response, 0, {})
    return result.score, result.details["passed"]


def test_a_right_answer_in_other_units_passes(items: dict[str, hipho.PhysicsItem]) -> None:
    assert score(items["speed"], "so \\boxed{45 \\mathrm{km/h}}")[0] == 1.0
    assert score(items["speed"], "\\boxed{12.55}")[0] == 1.0  # bare: in the asked unit, 0.4%
    assert score(items["speed"], "\\boxed{1250 cm/s}")[0] == 1.0


def test_wrong_magnitude_or_dimension_or_no_box_fails(items: dict[str, hipho.PhysicsItem]) -> None:
    assert score(items["speed"], "\\boxed{125 m/s}")[0] == 0.0
    assert score(items["speed"], "\\boxed{12.5 m}")[0] == 0.0
    assert score(items["speed"], "v = 12.5 m/s")[0] == 0.0  # the answer must be boxed


def test_symbolic_equivalent_passes_and_points_are_weighted(
    items: dict[str, hipho.PhysicsItem],
) -> None:
    same = "\\boxed{\\frac{2 v_0^2 \\sin\\theta \\cos\\theta}{g}} and \\boxed{3 kJ}"
    assert score(items["range"], same) == (1.0, [True, True])
    half = "\\boxed{R = v_0^2 \\sin\\theta / g} then \\boxed{3.0e3 J}"
    assert score(items["range"], half) == (0.25, [False, True])  # 1 of 4 points
    only_one = "\\boxed{3000 J}"  # too few boxes: the last ones answer the last parts
    assert score(items["range"], only_one)[1] == [False, False]


def test_points_metric_pools_points(items: dict[str, hipho.PhysicsItem]) -> None:
    from longhorizon.evaluation.metrics import estimate

    results = [
        hipho.score_item(items["speed"], "\\boxed{12.5 m/s}", 0, {}),
        hipho.score_item(items["range"], "\\boxed{0} \\boxed{0}", 0, {}),
    ]
    assert estimate(hipho.POINTS, results).mean == pytest.approx(2.0 / 6.0)


def written(part: hipho.Part) -> str:
    """A reference as an answer: a range by its middle, a formula as the benchmark writes it."""
    if part.kind == "numeric":
        return f"{part.params['value']} {part.params['unit']}"
    return hipho.strip_boxed(part.reference)


@needs_data
def test_counts_on_the_real_files(benchmarks: Path) -> None:
    items, info = hipho.read_folder(benchmarks / "hipho")
    assert info["questions"] == 403 and info["scorable"] == len(items) == 73
    assert info["excluded"] == {
        "figure": 275,
        "multiple choice": 36,
        "open-ended": 4,
        "equation or inequality": 6,
        "reference not parsed": 9,
    }
    for item in items:  # every reference, as a model would write it, scores full marks
        response = " ".join(f"\\boxed{{{written(p)}}}" for p in item.parts)
        assert score(item, response)[0] == 1.0, item.id


# ---- open-ended questions: the judge grades them on the benchmark's marking ------------------

MARKED = row(
    "marked",
    [""],
    ["Open-Ended"],
    points=[1.5],
    marking=[
        [
            "Award 1.0 pt if the answer names the moderator. Otherwise, award 0 pt.",
            "Award 0.5 pts if the answer explains the feedback.",
        ],
        ["Award 1.5 pts if the answer gives the alternative argument."],
    ],
)


def test_marking_schemes_are_rubrics() -> None:
    schemes = hipho.marking_schemes(MARKED["marking"])
    assert schemes is not None
    assert [[r.points for r in s] for s in schemes] == [[1.0, 0.5], [1.5]]
    assert schemes[0][0].text.startswith("Award 1.0 pt if the answer names")
    flat = hipho.marking_schemes(["Award 3.0 pts if it works.", "Award 1 pt if it is clear."])
    assert flat is not None and [r.points for r in flat[0]] == [3.0, 1.0]
    assert hipho.marking_schemes(["Give credit if it works."]) is None  # no points: unusable
    assert hipho.marking_schemes([]) is None


def test_open_ended_questions_are_items_only_with_a_judge(tmp_path: Path) -> None:
    folder = tmp_path / "hipho"
    folder.mkdir()
    (folder / "Toy_2025.json").write_text(json.dumps([{"information": "None."}, *ROWS, MARKED]))
    plain = hipho.load_items(EvalOptions(data_dir=tmp_path), Path("."))
    assert plain.info["excluded"]["open-ended"] == 2 and plain.info["scorable"] == 2
    assert plain.info["judge"] == NO_JUDGE_MESSAGE
    judge = JudgeSettings(base_url="http://127.0.0.1:1/v1", model="m")
    judged = hipho.load_items(EvalOptions(data_dir=tmp_path, judge=judge), Path("."))
    assert judged.info["excluded"]["open-ended"] == 1  # the one without a marking
    assert (judged.info["scorable"], judged.info["judged"]) == (3, 1)
    item = judged.items[-1]
    assert isinstance(item, hipho.OpenItem) and item.points == 1.5
    assert item.prompt.endswith("Find it.\n\nAnswer the question, explaining your reasoning.")


def test_the_best_marking_scheme_counts_in_the_questions_points() -> None:
    item = hipho.read_item(MARKED, judged=True)
    assert isinstance(item, hipho.OpenItem)
    with chat_server("ITEM 1: 1\nITEM 2: 0", "ITEM 1: 0.75") as server:

        async def main() -> ItemResult:
            async with open_judge(JudgeSettings(base_url=server.url, model="m")) as judge:
                return await hipho.score_any(judge, item, "Water moderates.", 0, {})

        result = asyncio.run(main())
    # scheme 1: 1 of 1.5 points (2/3); scheme 2: 0.75 of 1.5 (1/2): the first is best
    assert result.score == pytest.approx(2 / 3) and result.details["scheme"] == 0
    assert result.details["earned"] == pytest.approx(1.0) and result.details["total"] == 1.5
    assert result.details["awarded"] == [1.0, 0.0] and result.scored
    assert len(server.requests) == 2

    from longhorizon.evaluation.metrics import estimate

    numeric = hipho.read_item(ROWS[0])
    assert isinstance(numeric, hipho.PhysicsItem)
    right = hipho.score_item(numeric, "\\boxed{12.5 m/s}", 0, {})  # 2 of 2 points
    assert estimate(hipho.POINTS, [right, result]).mean == pytest.approx(3.0 / 3.5)


def test_an_open_item_the_judge_cannot_grade_is_unscored() -> None:
    item = hipho.read_item(MARKED, judged=True)
    assert isinstance(item, hipho.OpenItem)
    with chat_server("The answer deserves full marks.") as server:

        async def main() -> ItemResult:
            async with open_judge(JudgeSettings(base_url=server.url, model="m")) as judge:
                return await hipho.score_any(judge, item, "Water moderates.", 0, {})

        result = asyncio.run(main())
    assert (result.score, result.unscored) == (0.0, JUDGE_UNPARSED)
    assert "no 'ITEM k: <points>' line" in result.details["unscored_reason"]
    no_judge = asyncio.run(hipho.score_any(None, item, "Water moderates.", 0, {}))
    assert no_judge.unscored == NO_JUDGE


@needs_data
def test_the_real_open_ended_questions_with_a_judge(benchmarks: Path) -> None:
    items, info = hipho.read_folder(benchmarks / "hipho", judged=True)
    assert (info["scorable"], info["judged"]) == (77, 4) and "open-ended" not in info["excluded"]
    marked = {i.id: i for i in items if isinstance(i, hipho.OpenItem)}
    assert sorted(marked) == [
        "NBPhO_2024_2_3",
        "PanPhO_2025_6_10",
        "PanPhO_2025_6_11",
        "PanPhO_2025_6_8",
    ]
    oklo = marked["NBPhO_2024_2_3"]
    assert [r.points for r in oklo.schemes[0]] == [0.3, 0.2, 0.5, 0.5] and oklo.points == 1.5
    assert [sum(r.points for r in i.schemes[0]) for i in marked.values()] == [
        i.points for i in marked.values()
    ]
