"""Competitions built from a recipe: scikit-learn's bundled datasets and generated tabular and
time-series tasks, with controlled difficulty.

A recipe is a small JSON-able dict (`Recipe`); `build(recipe)` is deterministic in it, so the
task carries the recipe and the tools, the verifier and the held-out bench each rebuild the
same data (nothing is downloaded: `load_*` read the files scikit-learn ships). Difficulty:
- `noise`: label flips (classification) or Gaussian noise (regression), train and test alike;
- `missing`: a share of feature cells blanked (NaN), train and test alike;
- `imbalance`: the positive rate of a generated binary task (metric macro F1 or ROC AUC);
- `interactions`: a generated target depends on products of features (linear models miss it);
- `leak`: a trap column filled in *after* the outcome: it nearly equals the target in train and
  is blank at prediction time (test). A model that trusts it validates far above its test score.

The test labels (`y_test`) stay in the host process: `write_files` writes train.csv, test.csv
(features only), sample_submission.csv and description.md.

Not covered: scikit-learn's bundled files are readable inside the sandbox (the installation
is), so code that loads the original dataset and matches test rows to it recovers the labels
of a scikit-learn-sourced competition; generated competitions are safe from that (their seed
is never shown). Neither the verifier nor the reliability check detects such a lookup.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from sklearn import datasets

__all__ = [
    "SKLEARN_SOURCES",
    "SOURCES",
    "Competition",
    "Recipe",
    "build",
    "write_files",
]

Kind = Literal["classification", "regression"]
# name -> (loader, kind): the datasets scikit-learn ships with its wheel (no network)
SKLEARN_SOURCES: dict[str, tuple[Any, Kind]] = {
    "iris": (datasets.load_iris, "classification"),
    "wine": (datasets.load_wine, "classification"),
    "breast_cancer": (datasets.load_breast_cancer, "classification"),
    "digits": (datasets.load_digits, "classification"),
    "diabetes": (datasets.load_diabetes, "regression"),
}
GENERATED = ("tabular_clf", "tabular_reg", "series")
SOURCES = (*SKLEARN_SOURCES, *GENERATED)
METRICS: dict[str, Literal["max", "min"]] = {
    "accuracy": "max",
    "macro_f1": "max",
    "roc_auc": "max",
    "rmse": "min",
    "mae": "min",
}
LEAK_NAMES = ("followup_score", "resolution_code", "final_status")
TARGET = "target"


class Recipe(BaseModel):
    """What a competition is built from; its `key` names the competition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    seed: int = Field(ge=0)
    metric: str
    n_train: int = Field(default=240, ge=40, le=2000)
    n_test: int = Field(default=100, ge=20, le=500)
    noise: float = Field(default=0.0, ge=0, le=0.45)
    missing: float = Field(default=0.0, ge=0, le=0.5)
    imbalance: float = Field(default=0.5, gt=0, le=0.5, description="positive rate (binary)")
    interactions: bool = False
    leak: bool = False

    def key(self) -> str:
        digest = hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:10]
        return f"{self.source}-{digest}"


@dataclass(frozen=True)
class Competition:
    """A built competition: public data, hidden test labels, the metric and its direction."""

    id: str
    recipe: Recipe
    kind: Kind
    metric: str
    features: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray  # hidden: never written where the agent can read it
    leak: str | None = None
    time_ordered: bool = False

    @property
    def direction(self) -> Literal["max", "min"]:
        return METRICS[self.metric]

    @property
    def classes(self) -> tuple[int, ...]:
        return (
            tuple(int(c) for c in np.unique(self.y_train)) if self.kind == "classification" else ()
        )

    @property
    def train_ids(self) -> np.ndarray:
        return np.arange(len(self.y_train))

    @property
    def test_ids(self) -> np.ndarray:
        return np.arange(len(self.y_train), len(self.y_train) + len(self.y_test))

    @property
    def clean_columns(self) -> list[int]:
        """Feature columns without the leak trap (what an honest model may use)."""
        return [i for i, f in enumerate(self.features) if f != self.leak]


def build(recipe: Recipe | dict[str, Any]) -> Competition:
    """The competition of `recipe` (deterministic in it; the last few built are cached)."""
    recipe = recipe if isinstance(recipe, Recipe) else Recipe.model_validate(recipe)
    return _build(recipe)


@lru_cache(maxsize=64)
def _build(recipe: Recipe) -> Competition:
    if recipe.source not in SOURCES:
        raise ValueError(f"unknown competition source {recipe.source!r}; known: {SOURCES}")
    if recipe.metric not in METRICS:
        raise ValueError(f"unknown metric {recipe.metric!r}; known: {sorted(METRICS)}")
    rng = np.random.default_rng([recipe.seed, _stable(recipe.source)])
    n_train, n = recipe.n_train, recipe.n_train + recipe.n_test
    time_ordered = recipe.source == "series"
    if recipe.source in SKLEARN_SOURCES:
        x, y, names, kind = _sklearn(recipe.source, n, rng)
        if len(y) < n:  # a small dataset (iris: 150 rows): keep the train:test ratio
            n_train, n = round(len(y) * recipe.n_train / n), len(y)
    elif recipe.source == "series":
        x, y, names, kind = _series(n, rng)
    else:
        x, y, names, kind = _tabular(recipe, n, rng)
    y = _label_noise(y, kind, recipe.noise, rng)
    leak = None
    if recipe.leak:
        leak = LEAK_NAMES[recipe.seed % len(LEAK_NAMES)]
        x, names = _add_leak(x, y, names, leak, n_train, rng)
    x = _blank(x, recipe.missing, rng, keep=names.index(leak) if leak else None)
    tr, te = slice(0, n_train), slice(n_train, n)
    for array in (x, y):
        array.setflags(write=False)  # shared by every caller of the cache
    return Competition(
        id=recipe.key(),
        recipe=recipe,
        kind=kind,
        metric=recipe.metric,
        features=tuple(names),
        x_train=x[tr],
        y_train=y[tr],
        x_test=x[te],
        y_test=y[te],
        leak=leak,
        time_ordered=time_ordered,
    )


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _sklearn(source: str, n: int, rng: np.random.Generator) -> tuple[Any, Any, list[str], Kind]:
    loader, kind = SKLEARN_SOURCES[source]
    bunch = loader()
    x, y = np.asarray(bunch.data, dtype=float), np.asarray(bunch.target)
    order = rng.permutation(len(y))[: min(n, len(y))]
    names = [_column(str(f)) for f in bunch.feature_names]
    return x[order], y[order].astype(int if kind == "classification" else float), names, kind


def _column(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()


def _tabular(recipe: Recipe, n: int, rng: np.random.Generator) -> tuple[Any, Any, list[str], Kind]:
    """Gaussian features; a target linear in a few of them, plus products when asked."""
    d = int(rng.integers(6, 11))
    x = rng.normal(size=(n, d))
    w = np.zeros(d)
    informative = rng.choice(d, size=min(4, d), replace=False)
    w[informative] = rng.uniform(0.5, 1.5, size=len(informative)) * rng.choice([-1, 1], 4)
    signal = x @ w
    if recipe.interactions:
        a, b, c = informative[:3]
        signal = 0.4 * signal + 1.5 * x[:, a] * x[:, b] + np.abs(x[:, c])
    names = [f"f{i}" for i in range(d)]
    if recipe.source == "tabular_reg":
        y = signal + recipe.noise * signal.std() * rng.normal(size=n) * 2
        return x, y, names, "regression"
    cut = np.quantile(signal, 1 - recipe.imbalance)
    return x, (signal > cut).astype(int), names, "classification"


def _series(n: int, rng: np.random.Generator) -> tuple[Any, Any, list[str], Kind]:
    """One-step-ahead forecasting of a trend + season + AR(1) series; rows in time order."""
    period = int(rng.choice([7, 12]))
    total = n + period
    t = np.arange(total, dtype=float)
    ar = np.zeros(total)
    for i in range(1, total):
        ar[i] = 0.6 * ar[i - 1] + rng.normal()
    y = 0.05 * t + 3 * np.sin(2 * np.pi * t / period) + ar
    rows = np.arange(period, total)
    x = np.column_stack([t[rows], rows % period, y[rows - 1], y[rows - 2], y[rows - period]])
    return x, y[rows], ["t", "season", "lag1", "lag2", f"lag{period}"], "regression"


def _label_noise(y: Any, kind: Kind, noise: float, rng: np.random.Generator) -> Any:
    if noise <= 0 or kind == "regression":
        return y
    flip = rng.random(len(y)) < noise
    classes = np.unique(y)
    return np.where(flip, rng.choice(classes, size=len(y)), y)


def _add_leak(
    x: Any, y: Any, names: list[str], leak: str, n_train: int, rng: np.random.Generator
) -> tuple[Any, list[str]]:
    """A column recorded after the outcome: the target plus a little noise in train, blank
    (not yet known) at prediction time."""
    scale = float(np.std(y)) or 1.0
    column = y + 0.05 * scale * rng.normal(size=len(y))
    column[n_train:] = np.nan
    at = int(rng.integers(0, len(names) + 1))
    return np.insert(x, at, column, axis=1), [*names[:at], leak, *names[at:]]


def _blank(x: Any, share: float, rng: np.random.Generator, keep: int | None) -> Any:
    if share <= 0:
        return x
    x = x.copy()
    mask = rng.random(x.shape) < share
    if keep is not None:
        mask[:, keep] = False
    x[mask] = np.nan
    return x


# ---- files the agent sees ---------------------------------------------------------------------


def _csv(header: list[str], rows: Any) -> str:
    lines = [",".join(header)]
    lines += [",".join(_cell(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, float) and np.isnan(value):
        return ""
    if float(value).is_integer() and abs(float(value)) < 1e15:
        return str(int(value))
    return f"{float(value):.6g}"


def write_files(comp: Competition, directory: Path, description: str) -> list[Path]:
    """train.csv (id, features, target), test.csv (id, features), sample_submission.csv and
    description.md in `directory`; the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    header = ["id", *comp.features]
    train = np.column_stack([comp.train_ids, comp.x_train, comp.y_train]).tolist()
    test = np.column_stack([comp.test_ids, comp.x_test]).tolist()
    guess = comp.classes[0] if comp.classes else float(np.mean(comp.y_train))
    sample = [[i, guess] for i in comp.test_ids.tolist()]
    files = {
        "train.csv": _csv([*header, TARGET], train),
        "test.csv": _csv(header, test),
        "sample_submission.csv": _csv(["id", TARGET], sample),
        "description.md": description,
    }
    for name, text in files.items():
        (directory / name).write_text(text)
    return [directory / name for name in files]
