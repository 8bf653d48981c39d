"""MolBench-ms-1 (`molbench/molbench-ms-1.csv`, 50 items): RDKit property filtering.

Each CSV row (UTF-8 with a BOM) has `prompt` and `answer`. 35 prompts ask for every listed
SMILES that meets Lipinski's four limits plus two more constraints (MolWt, MolLogP, TPSA,
RotB, HeavyAtoms, ...); 7 ask for the molecule most similar to the first (Morgan radius 2,
2048 bits, Tanimoto); 8 for the one sharing the most Morgan (radius 2) fragments with the
first. The answer lists the right SMILES, one per line (lines after the first start with a
space in the file).

The model gets the prompt as one user message plus a line asking for the SMILES inside
<answer></answer>; its answer is the last <answer> block, else the whole response. Scoring
follows the benchmark's own rule: the set of stripped, non-empty lines of the prediction
must equal that of the reference, as strings (the prompt asks for SMILES "EXACTLY as
provided", so no canonicalisation). Precision, recall and F1 of the two sets, and the share
of predicted lines RDKit parses, go into each item's details; F1 is a second metric.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import benchmark_file
from longhorizon.core.task import Finalisation
from longhorizon.evaluation.bench import Bench, Loaded, limited
from longhorizon.evaluation.metrics import ACCURACY, Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import per_item, single_turn
from longhorizon.evaluation.smiles import canonical_smiles
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.finalise import extract_answer

NAME = "molbench-ms-1"
FILE = "molbench-ms-1.csv"
ANSWER_FORMAT = (
    "\n\nGive your final answer inside <answer></answer>: the selected SMILES, one per line, "
    "copied exactly from the list (leave it empty if none qualifies)."
)
_TAG = Finalisation(kind="answer_tag")
F1 = Metric("f1", ((1.0, Ratio(numerator=lambda r: float(r.details["f1"]))),), "mean set F1")


@dataclass(frozen=True)
class FilterItem:
    id: str
    question: str  # the CSV's prompt, as written
    answer: str

    @property
    def kind(self) -> str:
        """filter, similar or fragments: which of the benchmark's three task forms."""
        if "MOST similar" in self.question:
            return "similar"
        if "MOST structural fragments" in self.question:
            return "fragments"
        return "filter"

    @property
    def smiles(self) -> list[str]:
        """The listed SMILES, in order."""
        block = re.search(r"SMILES:\s*\n(.*?)\n\s*\n", self.question, re.S)
        return lines(block.group(1)) if block else []

    @property
    def prompt(self) -> str:
        """The user message: the question and the answer-format line."""
        return self.question.rstrip() + ANSWER_FORMAT


def lines(text: str | None) -> list[str]:
    """Stripped, non-empty lines."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def data_path(options: EvalOptions) -> Path:
    """--data-dir's ms-1 file, else the benchmark setting's (raises naming what to set)."""
    if options.data_dir is not None:
        return options.data_dir / "molbench" / FILE
    return benchmark_file("molbench", FILE)


def read_items(path: Path) -> list[FilterItem]:
    with path.open(encoding="utf-8-sig", newline="") as f:  # utf-8-sig: drop the BOM
        rows = list(csv.DictReader(f))
    return [FilterItem(f"ms1-{i:03d}", r["prompt"], r["answer"]) for i, r in enumerate(rows)]


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    path = data_path(options)
    return Loaded(limited(read_items(path), options.limit), {"data": str(path)})


def item_id(item: FilterItem) -> str:
    return item.id


def predicted_text(response: str) -> str:
    """The last <answer> block, else the whole response."""
    tagged = extract_answer(_TAG, response)
    return tagged if tagged is not None else response


def set_scores(predicted: set[str], reference: set[str]) -> dict[str, float]:
    """Exact set match, and precision / recall / F1 (0 when a side is empty and they differ)."""
    hit = len(predicted & reference)
    precision = hit / len(predicted) if predicted else 0.0
    recall = hit / len(reference) if reference else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    exact = predicted == reference
    return {"exact": float(exact), "precision": precision, "recall": recall, "f1": f1}


def score_item(item: FilterItem, response: str, seed: int, meta: dict[str, Any]) -> ItemResult:
    predicted = lines(predicted_text(response))
    reference = lines(item.answer)
    scores = set_scores(set(predicted), set(reference))
    valid = sum(canonical_smiles(p) is not None for p in predicted)
    return ItemResult(
        bench=NAME,
        item_id=item.id,
        seed=seed,
        score=scores["exact"],
        prediction="\n".join(predicted),
        reference="\n".join(reference),
        details={
            "response": response,
            "kind": item.kind,
            **{k: scores[k] for k in ("precision", "recall", "f1")},
            "validity": valid / len(predicted) if predicted else 0.0,
            **meta,
        },
    )


run = single_turn(NAME, per_item(score_item))


BENCH = Bench(
    name=NAME,
    metrics=(ACCURACY, F1),
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="MolBench-ms-1 (50 RDKit filtering / similarity items), exact set of SMILES",
)
