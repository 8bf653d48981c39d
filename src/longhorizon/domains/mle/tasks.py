"""MLE competitions as tasks: a recipe drawn at the level, its description (metric, direction,
files, submission format), the declared baseline and reference scores, and the split.

The reference is the better test score of two fixed pipelines (a linear model and a random
forest, on the columns without the leak trap); gains and medals are read against it
(`tools.mle.grade`). Screening rejects a competition whose reference does not beat the
baseline (nothing learnable). Held-out competitions never meet synthesis: the wine dataset
is held out whole, and of every other source a quarter of the recipes, by a hash.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.domains.mle.level import MLELevel
from longhorizon.tools.mle import Competition, Recipe, baseline_prediction, build, score
from longhorizon.tools.mle.data import SKLEARN_SOURCES, TARGET
from longhorizon.tools.mle.harness import SUBMISSION_FILE, competition_ref

__all__ = [
    "DOMAIN",
    "HELDOUT_SOURCES",
    "RELIABLE",
    "SUBMISSION",
    "TOOLS",
    "VERIFIERS",
    "describe",
    "draw_recipe",
    "heldout_region",
    "mle_protocol",
    "reference_score",
    "screen",
    "task_from_recipe",
]

DOMAIN = "mle"
GENERATOR = "longhorizon.domains.mle.task_from_recipe"
SUBMISSION, RELIABLE = "mle_submission", "mle_reliable"
VERIFIERS = frozenset({SUBMISSION, RELIABLE})
TOOLS = (
    "write_full_code",
    "patch_code",
    "execute_code",
    "list_nodes",
    "select_node",
    "invalidate_node",
    "update_answer",
    "get_current_answer",
    "write_notes",
    "read_notes",
)
HELDOUT_SOURCES = frozenset({"wine"})
HELDOUT_SHARE = 4
MAX_TURNS = 30
MAX_RESPONSE_TOKENS = 2048  # a complete script in one tool call is ~700 tokens
SYSTEM_PROMPT = (
    "You are a machine-learning engineer in a local competition. Grow a tree of solutions: "
    "write_full_code starts a root, patch_code makes a child of a node, execute_code runs a "
    "node in a sandbox (no network, a time limit) and reports its validation score and "
    "whether its submission is valid. Scripts print `validation_score: X` (the competition "
    "metric on data held out from train.csv) and write submission.csv. Invalidate nodes "
    "whose scores you do not trust (leakage, overfitting), commit your best node with "
    "update_answer, then reply with a short summary inside <answer></answer>."
)


def mle_protocol() -> Protocol:
    return Protocol(
        tools=TOOLS,
        budgets=Budgets(max_turns=MAX_TURNS, max_response_tokens=MAX_RESPONSE_TOKENS),
        system_prompt=SYSTEM_PROMPT,
    )


# ---- drawing a recipe --------------------------------------------------------------------------


def heldout_region(recipe: Recipe) -> bool:
    """Whether a recipe belongs to the held-out split (wine always; else one in four)."""
    if recipe.source in HELDOUT_SOURCES:
        return True
    digest = hashlib.sha256(recipe.model_dump_json().encode()).digest()
    return digest[0] % HELDOUT_SHARE == 0


def _metric(source: str, rng: random.Random, imbalanced: bool) -> str:
    if source in ("diabetes", "tabular_reg", "series"):
        return rng.choice(("rmse", "mae"))
    if source in ("breast_cancer", "tabular_clf"):
        return "macro_f1" if imbalanced else rng.choice(("accuracy", "roc_auc"))
    return rng.choice(("accuracy", "macro_f1"))


def draw_recipe(level: MLELevel, rng: random.Random, heldout: bool) -> Recipe:
    """One recipe of the split: a source, a metric and the difficulty knobs of the level."""
    generated = rng.random() < level.generated_share
    pool = ("tabular_clf", "tabular_reg", "series") if generated else tuple(SKLEARN_SOURCES)
    while True:
        source = rng.choice(pool)
        imbalanced = source == "tabular_clf" and rng.random() < level.imbalance_share
        recipe = Recipe(
            source=source,
            seed=rng.randrange(2**31),
            metric=_metric(source, rng, imbalanced),
            n_train=level.n_train,
            n_test=level.n_test,
            noise=round(rng.uniform(0, level.noise), 3),
            missing=level.missing if rng.random() < level.missing_share else 0.0,
            imbalance=0.12 if imbalanced else 0.5,
            interactions=source.startswith("tabular") and rng.random() < level.interactions_share,
            leak=rng.random() < level.leak_share,
        )
        if heldout_region(recipe) == heldout:
            return recipe


# ---- baseline and reference --------------------------------------------------------------------


def _predict(model: Any, x: np.ndarray, comp: Competition) -> np.ndarray:
    if comp.metric == "roc_auc":
        return np.asarray(model.predict_proba(x)[:, 1])
    return np.asarray(model.predict(x), dtype=float)


def reference_score(comp: Competition) -> float:
    """The better test score of a linear pipeline and a random forest on the clean columns."""
    cols = comp.clean_columns
    if comp.kind == "classification":
        models = [LogisticRegression(max_iter=2000), RandomForestClassifier(100, random_state=0)]
    else:
        models = [Ridge(alpha=1.0), RandomForestRegressor(100, random_state=0)]
    scores = []
    for model in models:
        pipe = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), model)
        pipe.fit(comp.x_train[:, cols], comp.y_train)
        scores.append(score(comp, _predict(pipe, comp.x_test[:, cols], comp)))
    return max(scores) if comp.direction == "max" else min(scores)


def describe(comp: Competition) -> str:
    """The competition page: task, files, metric and direction, submission format."""
    kind = "classify" if comp.kind == "classification" else "predict"
    what = (
        f"the class of `{TARGET}` (one of {list(comp.classes)})"
        if comp.classes
        else (f"the numeric `{TARGET}`")
    )
    if comp.metric == "roc_auc":
        what = f"the probability that `{TARGET}` is 1"
    order = (
        " Rows are in time order; the test period follows the training period, so validate "
        "on the latest training rows, never on earlier ones."
        if comp.time_ordered
        else ""
    )
    better = "higher" if comp.direction == "max" else "lower"
    return (
        f"# Competition {comp.id}\n\n"
        f"For each row of test.csv, {kind} {what}.{order}\n\n"
        f"Files in the working directory: train.csv ({len(comp.y_train)} rows: id, "
        f"{len(comp.features)} feature columns, {TARGET}), test.csv ({len(comp.y_test)} rows: "
        f"id and the features), sample_submission.csv. Blank cells are missing values.\n"
        f"Features: {', '.join(comp.features)}.\n\n"
        f"Metric: {comp.metric} ({better} is better).\n"
        f"Submission: {SUBMISSION_FILE} with the header `id,{TARGET}` and one row per test id.\n"
    )


def task_from_recipe(recipe: Recipe, level: MLELevel, seed: int | None = None) -> Task:
    """The task of one competition, with its declared baseline and reference scores."""
    comp = build(recipe)
    description = describe(comp)
    meta = {
        "recipe": recipe.model_dump(),
        "description": description,
        "time_limit_s": level.time_limit_s,
        "competition": {
            "id": comp.id,
            "kind": comp.kind,
            "metric": comp.metric,
            "direction": comp.direction,
            "time_ordered": comp.time_ordered,
        },
        "baseline": score(comp, baseline_prediction(comp)),
        "reference": reference_score(comp),
        "margin": level.margin,
        "max_gap": level.max_gap,
    }
    return Task(
        id=f"mle-{comp.id}",
        domain=DOMAIN,
        instruction=description
        + "\nBuild solutions with the tools, commit the best trustworthy one, then answer.",
        evidence=[competition_ref(comp.id)],
        verifiers=[VerifierSpec(name=SUBMISSION), VerifierSpec(name=RELIABLE)],
        protocol=mle_protocol(),
        provenance=Provenance(
            source="synthetic", generator=GENERATOR, seed=seed, extra={"source": recipe.source}
        ),
        metadata=meta,
    )


def screen(task: Task) -> str | None:
    """A rejection reason for a competition without room to learn, else None."""
    meta = task.metadata
    sign = 1.0 if meta["competition"]["direction"] == "max" else -1.0
    if sign * (meta["reference"] - meta["baseline"]) <= 0:
        return (
            f"unlearnable: the reference {meta['reference']:.4g} does not beat the baseline "
            f"{meta['baseline']:.4g}"
        )
    return None
