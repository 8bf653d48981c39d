"""A scripted MLE expert: scikit-learn pipelines grown as a solution tree through the tools.

1. Root: a linear pipeline (imputer, scaler, logistic or ridge regression) with a data audit
   that prints any feature almost equal to the target in train yet blank in test (a column
   filled in after the outcome). If the audit names one, the expert notes it, patches the
   root to drop it and invalidates the root (leakage).
2. Root: an unpruned decision tree that also prints its training score; a training score far
   above the validation score gets it invalidated (overfitting).
3. Root: a random forest (dropping what the audit named).
4. Patch of the best node so far: stronger settings (degree-2 features for the linear model,
   more and shallower-leaved trees for the forest). With `error_rate` the first patch has a
   typo and crashes (a failed node, kept as negative evidence); a second patch fixes it.
5. Commit the best valid node by validation score, then answer.

Validation is 5-fold cross-validation (time-ordered splits when rows are in time order). The
expert reads only what a model would: the task's description (kept in the metadata) and the
tools' observations; never the hidden labels or which column is the trap.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator
from typing import Any

from longhorizon.core.messages import Message, last_observations
from longhorizon.core.task import Task
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER

__all__ = ["MLEExpert", "expert_script", "solution_code"]

Turns = Generator[str, str, None]
_CREATED = re.compile(r"Created node (\d+)")
_RUN = re.compile(r"^node (\d+): (ok|failed)(?:, validation_score=([^,;\s]+))?", re.M)
_TRAIN = re.compile(r"train_score: ([-+0-9.eE]+|nan)")
_LEAK = re.compile(r"audit: leak (\S+):")
# an overfit node: a [0, 1] training score 0.05 above validation, or a training error below
# half the validation error
OVERFIT_GAP, OVERFIT_RATIO = 0.05, 0.5
LINEAR = {"classification": "LogisticRegression(max_iter=2000)", "regression": "Ridge(alpha=1.0)"}
TREE = {
    "classification": "DecisionTreeClassifier(random_state=0)",
    "regression": "DecisionTreeRegressor(random_state=0)",
}
FOREST = {
    "classification": "RandomForestClassifier(n_estimators=50, random_state=0)",
    "regression": "RandomForestRegressor(n_estimators=50, random_state=0)",
}
METRIC_CODE = {
    "accuracy": "metrics.accuracy_score(y_true, pred)",
    "macro_f1": "metrics.f1_score(y_true, pred, average='macro')",
    "roc_auc": "metrics.roc_auc_score(y_true, pred)",
    "rmse": "float(np.sqrt(np.mean((y_true - pred) ** 2)))",
    "mae": "float(np.mean(np.abs(y_true - pred)))",
}
AUDIT = """
for j, name in enumerate(head[1:-1], start=1):
    a, blank_test = train[:, j], float(np.isnan(test[:, j]).mean())
    ok = ~np.isnan(a)
    if ok.sum() > 2 and np.std(a[ok]) > 0 and np.isnan(a).mean() < 0.1 and blank_test > 0.9:
        r = abs(np.corrcoef(a[ok], y[ok])[0, 1])
        if r > 0.95:
            print(f"audit: leak {name}: corr {r:.3f} with the target in train, "
                  f"{blank_test:.0%} blank in test")
"""


def solution_code(
    meta: dict[str, Any],
    model: str,
    drop: list[str],
    *,
    audit: bool = False,
    train_score: bool = False,
    poly: bool = False,
) -> str:
    """A complete script: load, cross-validate, print validation_score, fit, write submission."""
    comp = meta["competition"]
    proba = comp["metric"] == "roc_auc"
    cv = (
        "TimeSeriesSplit(n_splits=5)"
        if comp["time_ordered"]
        else ("KFold(n_splits=5, shuffle=True, random_state=0)")
    )
    steps = "SimpleImputer(strategy='median'), StandardScaler(), "
    steps += "PolynomialFeatures(2), StandardScaler(), " if poly else ""
    predict = "model.predict_proba(x)[:, 1]" if proba else "model.predict(x)"
    fmt = "{p:.6g}" if proba or comp["kind"] == "regression" else "{int(p)}"
    lines = [
        "import csv",
        "import numpy as np",
        "from sklearn import metrics",
        "from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor",
        "from sklearn.impute import SimpleImputer",
        "from sklearn.linear_model import LogisticRegression, Ridge",
        "from sklearn.model_selection import KFold, TimeSeriesSplit",
        "from sklearn.pipeline import make_pipeline",
        "from sklearn.preprocessing import PolynomialFeatures, StandardScaler",
        "from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor",
        "",
        f"DROP = {drop!r}",
        "",
        "def load(path):",
        "    with open(path) as f:",
        "        rows = list(csv.reader(f))",
        "    return rows[0], np.array([[float(v) if v else np.nan for v in r] for r in rows[1:]])",
        "",
        "head, train = load('train.csv')",
        "_, test = load('test.csv')",
        "cols = [i for i, n in enumerate(head) if n not in ('id', 'target', *DROP)]",
        "X, y = train[:, cols], train[:, head.index('target')]",
        "X_test, ids = test[:, cols], test[:, 0].astype(int)",
        *([AUDIT.strip("\n")] if audit else []),
        "",
        "def predict(model, x):",
        f"    return {predict}",
        "",
        "def score(y_true, pred):",
        f"    return {METRIC_CODE[comp['metric']]}",
        "",
        "def make():",
        f"    return make_pipeline({steps}{model})",
        "",
        "folds = []",
        f"for fit, val in {cv}.split(X):",
        "    folds.append(score(y[val], predict(make().fit(X[fit], y[fit]), X[val])))",
        "print(f'validation_score: {np.mean(folds):.6f}')",
        "model = make().fit(X, y)",
        *(["print(f'train_score: {score(y, predict(model, X)):.6f}')"] if train_score else []),
        "pred = predict(model, X_test)",
        "with open('submission.csv', 'w') as f:",
        "    f.write('id,target\\n')",
        "    for i, p in zip(ids, pred):",
        f"        f.write(f'{{i}},{fmt}\\n')",
    ]
    return "\n".join(lines) + "\n"


def tool_call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def _answer(text: str) -> str:
    return f"<answer>{text}</answer>"


class MLEExpert:
    """A stateful script: a generator of turns fed with each turn's observation."""

    def __init__(self, task: Task, *, error_rate: float = 0.0, seed: int = 0) -> None:
        self.task, self.meta = task, task.metadata
        rng = random.Random(f"mle-expert:{seed}:{task.id}")
        self.slip = rng.random() < error_rate
        self.scores: dict[int, float] = {}  # node -> validation score, valid nodes only
        self.notes: list[str] = []
        self._turns: Turns | None = None
        self._last = ""

    def __call__(self, messages: list[Message]) -> str:
        last = messages[-1]
        if last.role == "user" and last.content != self.task.instruction:
            if last.content == COMPACT_PROMPT:
                return "Task: " + self.task.instruction + "\nDone: " + "; ".join(self.notes)
            if DIGEST_HEADER in (last.content or ""):
                return self._last
            return _answer("I have to stop here.")
        try:
            if self._turns is None or last.role == "user":
                self._turns = self._solve()
                self._last = next(self._turns)
            else:
                self._last = self._turns.send(last_observations(messages))
        except StopIteration:
            self._last = _answer("I have no further steps.")
        return self._last

    # ---- the plan ---------------------------------------------------------------------------
    def _solve(self) -> Turns:
        kind = self.meta["competition"]["kind"]
        linear, seen = yield from self._root(
            "linear baseline with a data audit", LINEAR[kind], [], audit=True
        )
        drop = _LEAK.findall(seen)
        if drop:
            yield self._call(
                "write_notes",
                text=f"Leak: {', '.join(drop)} is filled in after the outcome "
                "(blank in test); drop it.",
            )
            old, new = "DROP = []", f"DROP = {drop!r}"
            fixed, _ = yield from self._patch(
                linear, old, new, f"drop the leaking column(s) {', '.join(drop)}"
            )
            yield from self._invalidate(
                linear, f"leakage: uses {', '.join(drop)}, known only after the outcome"
            )
            linear = fixed
        tree, seen = yield from self._root(
            "unpruned decision tree", TREE[kind], drop, train_score=True
        )
        if self._overfit(tree, seen):
            yield from self._invalidate(
                tree, "overfitting: the training score is far above the validation score"
            )
        forest, _ = yield from self._root("random forest", FOREST[kind], drop)
        yield from self._improve(linear, forest)
        if not self.scores:
            yield _answer("No node produced a valid submission.")
            return
        best = self._best()
        yield self._call("update_answer", node_id=best)
        summary = f"Committed node {best} (validation_score {self.scores[best]:.4f})."
        yield _answer(
            summary + (f" Dropped the leaking column(s) {', '.join(drop)}." if drop else "")
        )

    def _improve(self, linear: int | None, forest: int | None) -> Turns:
        """Patch the better of the linear model and the forest with stronger settings."""
        candidates = [n for n in (linear, forest) if n is not None and n in self.scores]
        if not candidates:
            return
        best = self._best(candidates)
        if best == linear:
            old, new, plan = (
                "StandardScaler(), ",
                "StandardScaler(), PolynomialFeatures(2), StandardScaler(), ",
                "add degree-2 interactions",
            )
            old, new = (
                f"make_pipeline(SimpleImputer(strategy='median'), {old}",
                f"make_pipeline(SimpleImputer(strategy='median'), {new}",
            )
        else:
            old, new = "n_estimators=50", "n_estimators=100, min_samples_leaf=2"
            plan = "more trees, smoother leaves"
        if self.slip:
            self.slip = False
            typo = (
                new.replace("n_estimators", "n_estimator")
                if best == forest
                else new.replace("PolynomialFeatures", "PolynomialFeature")
            )
            yield from self._patch(best, old, typo, plan)
        yield from self._patch(best, old, new, plan)

    # ---- tool steps -------------------------------------------------------------------------
    def _invalidate(self, node: int | None, reason: str) -> Turns:
        if node is not None:
            self.scores.pop(node, None)
            yield self._call("invalidate_node", node_id=node, reason=reason)

    def _root(
        self, plan: str, model: str, drop: list[str], **flags: bool
    ) -> Generator[str, str, tuple[int | None, str]]:
        code = solution_code(self.meta, model, drop, **flags)
        created = yield self._call("write_full_code", code=code, plan=plan)
        return (yield from self._run(created))

    def _patch(
        self, node: int | None, old: str, new: str, plan: str
    ) -> Generator[str, str, tuple[int | None, str]]:
        if node is None:
            return None, ""
        created = yield self._call("patch_code", node_id=node, old=old, new=new, plan=plan)
        return (yield from self._run(created))

    def _run(self, created: str) -> Generator[str, str, tuple[int | None, str]]:
        found = _CREATED.search(created)
        if found is None:
            return None, created
        node = int(found.group(1))
        seen = yield self._call("execute_code", node_id=node)
        run = _RUN.search(seen)
        if run is not None and run.group(2) == "ok" and run.group(3) is not None:
            self.scores[node] = float(run.group(3))
            self.notes.append(f"node {node}: {run.group(3)}")
        return node, seen

    def _overfit(self, node: int | None, seen: str) -> bool:
        train = _TRAIN.search(seen)
        if node is None or node not in self.scores or train is None:
            return False
        fit, val = float(train.group(1)), self.scores[node]
        if self.meta["competition"]["direction"] == "max":
            return fit - val > OVERFIT_GAP
        return fit < OVERFIT_RATIO * val

    def _best(self, among: list[int] | None = None) -> int:
        nodes = among if among is not None else list(self.scores)
        sign = 1.0 if self.meta["competition"]["direction"] == "max" else -1.0
        return max(nodes, key=lambda n: (sign * self.scores[n], -n))

    def _call(self, name: str, **arguments: Any) -> str:
        return f"Calling {name}.\n{tool_call(name, **arguments)}"


def expert_script(task: Task, *, error_rate: float = 0.0, seed: int = 0) -> MLEExpert:
    """The script for `ScriptedAgent(renderer, expert_script(task))`."""
    return MLEExpert(task, error_rate=error_rate, seed=seed)
