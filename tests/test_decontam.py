"""The n-gram contamination audit against the real benchmark files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from longhorizon.synthesis.decontam import (
    ContaminationIndex,
    ngram_keys,
    words,
)


def test_words_normalise_case_punctuation_and_unicode() -> None:
    assert words("Hello, WORLD!  It's\u00a0fine") == ["hello", "world", "it", "s", "fine"]
    assert len(ngram_keys("a b c d", n=3)) == 2
    assert ngram_keys("a b", n=3) == set()


def test_planted_benchmark_prompt_is_flagged(benchmarks: Path) -> None:
    index = ContaminationIndex.from_paths([benchmarks])
    first = json.loads((benchmarks / "ifeval" / "input_data.jsonl").read_text().splitlines()[0])
    planted = "Background reading for the agent.\n" + first["prompt"].upper() + "\nThe end."
    corpus = [
        ("doc-1", "Rivers flow to the sea and bees make honey in summer."),
        ("doc-2", planted),
    ]
    (hit,) = index.audit(corpus)
    assert hit.item_id == "doc-2" and hit.source == "input_data.jsonl"
    assert hit.shared_ngrams >= 1


def test_csv_with_bom_is_read(benchmarks: Path) -> None:
    index = ContaminationIndex.from_paths([benchmarks / "molbench"], n=8)
    assert index.sources, "MolBench rows must produce n-grams"
    assert set(index.sources.values()) <= {"molbench-ms-1.csv", "molbench-ms-2.csv"}


def test_user_eval_file_and_short_overlap(tmp_path: Path) -> None:
    eval_file = tmp_path / "mine.jsonl"
    eval_file.write_text(json.dumps({"q": " ".join(f"w{i}" for i in range(20))}) + "\n")
    index = ContaminationIndex.from_paths([eval_file])
    twelve = " ".join(f"w{i}" for i in range(12))
    assert index.check("a", twelve) is None  # 12 shared words are not a 13-gram
    assert index.check("b", "x " + " ".join(f"w{i}" for i in range(3, 16))).source == "mine.jsonl"


def test_the_audit_indexes_hipho_and_frontierscience(benchmarks: Path) -> None:
    """The judge-scored benchmarks are in the audit's index like the rest (never train on them):
    a FrontierScience problem, its research rubric, and a HiPhO question are all flagged."""
    from longhorizon.synthesis.decontam import benchmark_index

    index = benchmark_index()
    assert index is not None
    with (benchmarks / "frontierscience" / "frontierscience.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    research = next(r for r in rows if r["category"] == "research")
    hipho = json.loads((benchmarks / "hipho" / "NBPhO_2024.json").read_text(encoding="utf-8"))[1]
    corpus = [
        ("fs-problem", "Notes: " + rows[0]["problem"]),
        ("fs-rubric", research["answer"]),
        ("hipho", hipho["context"]),
    ]
    hits = {h.item_id: h.source for h in index.audit(corpus)}
    assert hits == {
        "fs-problem": "frontierscience.csv",
        "fs-rubric": "frontierscience.csv",
        "hipho": "NBPhO_2024.json",
    }
