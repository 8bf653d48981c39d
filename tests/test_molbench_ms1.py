"""MolBench-ms-1 (property filtering): reading the CSV, and exact set-of-lines scoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from longhorizon.evaluation import molbench_ms1
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.runner import get_bench

PROMPT = """You are a cheminformatics assistant.

Task:
From the following SMILES list, output ALL molecules that satisfy ALL constraints below.

SMILES:
CCO
c1ccccc1O
CC(=O)Oc1ccccc1C(=O)O

Constraints:
  - MolWt <= 150

Output format:
Print each satisfying SMILES on its own line, and nothing else."""


@pytest.fixture
def item(tmp_path: Path) -> molbench_ms1.FilterItem:
    """A hand-made row, written as the benchmark writes them (a BOM, a quoted multi-line
    prompt, answer lines after the first starting with a space)."""
    folder = tmp_path / "molbench"
    folder.mkdir()
    quoted = PROMPT.replace('"', '""')
    (folder / molbench_ms1.FILE).write_text(
        f'\ufeffprompt,answer\n"{quoted}","CCO\n c1ccccc1O"\n', encoding="utf-8"
    )
    (loaded,) = molbench_ms1.load_items(EvalOptions(data_dir=tmp_path), Path(".")).items
    return loaded


def score(item: molbench_ms1.FilterItem, response: str) -> tuple[float, float]:
    result = molbench_ms1.score_item(item, response, 0, {})
    return result.score, result.details["f1"]


def test_reads_the_bom_the_list_and_the_kind(item: molbench_ms1.FilterItem) -> None:
    assert item.id == "ms1-000" and item.kind == "filter"
    assert item.smiles == ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O"]
    assert molbench_ms1.lines(item.answer) == ["CCO", "c1ccccc1O"]
    assert item.prompt.startswith(PROMPT) and item.prompt.endswith(
        "inside <answer></answer>: "
        "the selected SMILES, one per line, copied exactly from the list (leave it empty if "
        "none qualifies)."
    )


def test_exact_set_of_stripped_lines(item: molbench_ms1.FilterItem) -> None:
    assert score(item, "<answer>\nCCO\nc1ccccc1O\n</answer>") == (1.0, 1.0)
    assert score(item, "Thinking...\n<answer>  c1ccccc1O\n\nCCO  </answer>") == (1.0, 1.0)
    assert score(item, "CCO\nc1ccccc1O") == (1.0, 1.0)  # no tag: the whole response
    assert score(item, "<answer>CCO\nc1ccccc1O\nCCO</answer>") == (1.0, 1.0)  # a set
    # Strings, not molecules: the prompt asks for the SMILES exactly as listed.
    assert score(item, "<answer>OCC\nc1ccccc1O</answer>") == (0.0, 0.5)
    assert score(item, "<answer>CCO</answer>") == (0.0, pytest.approx(2 / 3))
    extra = molbench_ms1.score_item(item, "<answer>CCO\nc1ccccc1O\nC1CC(</answer>", 0, {})
    assert extra.score == 0.0 and extra.details["precision"] == pytest.approx(2 / 3)
    assert extra.details["validity"] == pytest.approx(2 / 3)
    assert score(item, "<answer></answer>") == (0.0, 0.0)
    assert score(item, "") == (0.0, 0.0)


def test_an_empty_reference_is_met_by_an_empty_answer() -> None:
    none = molbench_ms1.FilterItem("x", PROMPT, "")
    assert score(none, "<answer>\n</answer>") == (1.0, 0.0)
    assert score(none, "<answer>CCO</answer>") == (0.0, 0.0)


@pytest.mark.usefixtures("benchmarks")
def test_the_benchmark_file_loads_and_its_answers_score_one() -> None:
    items = molbench_ms1.load_items(EvalOptions(), Path(".")).items
    assert len(items) == 50
    kinds = [i.kind for i in items]
    assert (kinds.count("filter"), kinds.count("similar"), kinds.count("fragments")) == (35, 7, 8)
    for item in items:
        assert set(molbench_ms1.lines(item.answer)) <= set(item.smiles), item.id
        assert score(item, f"<answer>{item.answer}</answer>")[0] == 1.0
    bench = get_bench("molbench-ms-1")
    assert [m.name for m in bench.metrics] == ["accuracy", "f1"]
