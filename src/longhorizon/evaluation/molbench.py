"""MolBench-Bind (`molbench/molbench-ms-2.csv`, 37 items): pick the better or worse binder.

Each CSV row (UTF-8 with a BOM) has `question` (a target and two molecules, A and B, as
SMILES, and which to pick: higher or lower affinity), `answer` (the chosen molecule's SMILES)
and `target`. The model gets the question as one user message plus a line asking for the
SMILES inside <answer></answer>. Its answer is the last <answer> block, or the whole response
when it has none (the question itself says "Only output the corresponding SMILES", so a bare
SMILES is a legitimate answer). Score: exact match after RDKit canonicalisation of both;
an invalid SMILES is wrong.
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
from longhorizon.evaluation.metrics import ACCURACY
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.single_turn import per_item, single_turn
from longhorizon.evaluation.smiles import canonical_smiles, same_molecule
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.finalise import extract_answer

NAME = "molbench"
FILE = "molbench-ms-2.csv"
ANSWER_FORMAT = (
    "\n\nGive your final answer as exactly one SMILES string, copied from the molecule you "
    "choose, inside <answer></answer>."
)
_MOLECULE = re.compile(r"^Molecule ([AB]):\s*(\S+)\s*$", re.MULTILINE)
_TAG = Finalisation(kind="answer_tag")


@dataclass(frozen=True)
class MolItem:
    id: str
    question: str
    answer: str
    target: str

    @property
    def molecules(self) -> dict[str, str]:
        """{"A": smiles, "B": smiles} as the question states them."""
        return dict(_MOLECULE.findall(self.question))

    @property
    def prompt(self) -> str:
        return self.question.rstrip() + ANSWER_FORMAT


def data_path(options: EvalOptions) -> Path:
    """--data-dir's MolBench file, else the benchmark setting's (raises naming what to set)."""
    if options.data_dir is not None:
        return options.data_dir / "molbench" / FILE
    return benchmark_file("molbench", FILE)


def read_items(path: Path) -> list[MolItem]:
    # utf-8-sig drops the BOM, which would otherwise become part of the first column's name.
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        MolItem(id=f"bind-{i:03d}", question=r["question"], answer=r["answer"], target=r["target"])
        for i, r in enumerate(rows)
    ]


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    path = data_path(options)
    return Loaded(limited(read_items(path), options.limit), {"data": str(path)})


def item_id(item: MolItem) -> str:
    return item.id


def predicted_smiles(response: str) -> str | None:
    """The last <answer> block, else the whole response (a bare SMILES)."""
    tagged = extract_answer(_TAG, response)
    return tagged if tagged is not None else (response.strip() or None)


def chosen(item: MolItem, predicted: str | None) -> str | None:
    """Which molecule ("A" or "B") the prediction names, if either."""
    canon = canonical_smiles(predicted)
    if canon is None:
        return None
    return next((k for k, s in item.molecules.items() if canonical_smiles(s) == canon), None)


def score_item(item: MolItem, response: str, seed: int, meta: dict[str, Any]) -> ItemResult:
    predicted = predicted_smiles(response)
    return ItemResult(
        bench=NAME,
        item_id=item.id,
        seed=seed,
        score=float(same_molecule(predicted, item.answer)),
        prediction=predicted,
        reference=item.answer,
        details={
            "response": response,
            "valid_smiles": canonical_smiles(predicted) is not None,
            "chose": chosen(item, predicted),
            "target": item.target,
            **meta,
        },
    )


run = single_turn(NAME, per_item(score_item))


BENCH = Bench(
    name=NAME,
    metrics=(ACCURACY,),
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="MolBench-Bind (37 pairs), canonical-SMILES exact match",
)
