"""HiPhO: which questions are scored, and scoring with the science verifier's semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longhorizon.evaluation import hipho
from longhorizon.evaluation.options import EvalOptions

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
