"""The local grader of a competition: submission validation, the metric, the declared
baseline, and the gain over it that medals are read from.

A submission is a CSV with the header `id,target` and one row per test id (any order). It is
rejected, with a message naming the first problem, when the header differs, a row has the
wrong number of cells, an id is not an integer, repeats, is not a test id or is missing, or a
prediction is not a finite number, not one of the training classes (accuracy, macro F1) or
not a probability in [0, 1] (ROC AUC).

Gain: the share of the way from the baseline's test score to the reference's that a score
covers (1 = as good as the reference pipeline, above 1 better; in the metric's direction).
"""

from __future__ import annotations

import csv
import io
import math
from typing import Literal

import numpy as np
from sklearn import metrics as skm

from longhorizon.tools.mle.data import TARGET, Competition

__all__ = [
    "MEDALS",
    "SubmissionError",
    "baseline_prediction",
    "gain",
    "medal",
    "metric_value",
    "parse_submission",
    "score",
]

# (medal, least gain over the baseline, as a share of the reference's): best first
MEDALS: tuple[tuple[str, float], ...] = (("gold", 1.0), ("silver", 0.9), ("bronze", 0.75))
_SHOWN = 5  # ids listed in an error message


class SubmissionError(ValueError):
    """A submission the grader cannot score; the message says what to fix."""


def parse_submission(text: str, comp: Competition) -> np.ndarray:
    """The predictions in test-id order; SubmissionError on the first problem found."""
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise SubmissionError(
            "submission.csv is empty: write the header id,target and one row per test id"
        )
    header = [c.strip() for c in rows[0]]
    if header != ["id", TARGET]:
        raise SubmissionError(f"the header must be 'id,{TARGET}', got {','.join(header)!r}")
    wanted = {int(i): k for k, i in enumerate(comp.test_ids)}
    preds = np.full(len(wanted), np.nan)
    seen: set[int] = set()
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != 2:
            raise SubmissionError(f"line {line}: expected 2 cells (id,{TARGET}), got {len(row)}")
        ident = _id(row[0], line)
        if ident in seen:
            raise SubmissionError(f"line {line}: id {ident} appears more than once")
        if ident not in wanted:
            raise SubmissionError(f"line {line}: id {ident} is not a test id (see test.csv)")
        seen.add(ident)
        preds[wanted[ident]] = _prediction(row[1], line, comp)
    missing = sorted(set(wanted) - seen)
    if missing:
        shown = ", ".join(map(str, missing[:_SHOWN])) + (" ..." if len(missing) > _SHOWN else "")
        raise SubmissionError(f"{len(missing)} test id(s) have no prediction: {shown}")
    return preds


def _id(cell: str, line: int) -> int:
    try:
        return int(cell.strip())
    except ValueError:
        raise SubmissionError(f"line {line}: id {cell!r} is not an integer") from None


def _prediction(cell: str, line: int, comp: Competition) -> float:
    try:
        value = float(cell.strip())
    except ValueError:
        raise SubmissionError(f"line {line}: prediction {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise SubmissionError(f"line {line}: prediction {cell!r} is not finite")
    if comp.metric == "roc_auc" and not 0.0 <= value <= 1.0:
        raise SubmissionError(f"line {line}: {value:g} is not a probability in [0, 1] (roc_auc)")
    if comp.metric in ("accuracy", "macro_f1") and value not in comp.classes:
        raise SubmissionError(
            f"line {line}: {value:g} is not a class label; the classes are {list(comp.classes)}"
        )
    return value


def metric_value(metric: str, y_true: np.ndarray, pred: np.ndarray) -> float:
    """The competition metric of predictions against the truth."""
    if metric == "accuracy":
        return float(skm.accuracy_score(y_true, pred))
    if metric == "macro_f1":
        return float(skm.f1_score(y_true, pred, average="macro", zero_division=0))
    if metric == "roc_auc":
        return float(skm.roc_auc_score(y_true, pred))
    if metric == "rmse":
        return float(np.sqrt(np.mean((np.asarray(y_true) - pred) ** 2)))
    if metric == "mae":
        return float(np.mean(np.abs(np.asarray(y_true) - pred)))
    raise ValueError(f"unknown metric {metric!r}")


def score(comp: Competition, pred: np.ndarray) -> float:
    """The test score of predictions in test-id order (the hidden labels stay here)."""
    return metric_value(comp.metric, comp.y_test, pred)


def baseline_prediction(comp: Competition) -> np.ndarray:
    """The declared baseline: the majority class, 0.5 for every AUC row, or the train mean
    (the median for MAE); it uses no feature."""
    n = len(comp.y_test)
    if comp.metric == "roc_auc":
        return np.full(n, 0.5)
    if comp.kind == "classification":
        values, counts = np.unique(comp.y_train, return_counts=True)
        return np.full(n, float(values[np.argmax(counts)]))
    centre = np.median if comp.metric == "mae" else np.mean
    return np.full(n, float(centre(comp.y_train)))


def gain(
    value: float, baseline: float, reference: float, direction: Literal["max", "min"]
) -> float:
    """The share of the baseline-to-reference way that `value` covers (direction-aware)."""
    sign = 1.0 if direction == "max" else -1.0
    span = sign * (reference - baseline)
    if span <= 0:
        raise ValueError(f"the reference {reference:g} does not beat the baseline {baseline:g}")
    return sign * (value - baseline) / span


def medal(value_gain: float) -> str | None:
    """The best medal whose threshold the gain reaches, or None."""
    return next((name for name, least in MEDALS if value_gain >= least), None)
