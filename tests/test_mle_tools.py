"""The MLE domain's tool side: competitions, the grader on hand-made submissions, the
solution tree and its replay, and the tools in the real python sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from longhorizon.core import Task
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.mle import (
    Call,
    Recipe,
    SolutionTree,
    SubmissionError,
    TreeError,
    baseline_prediction,
    build,
    gain,
    medal,
    parse_submission,
    replay,
    score,
)
from longhorizon.tools.types import ToolContext

IRIS = Recipe(source="iris", seed=3, metric="accuracy", n_train=100, n_test=50)


def _csv(ids: np.ndarray, preds: list[object]) -> str:
    return "id,target\n" + "".join(f"{i},{p}\n" for i, p in zip(ids, preds, strict=True))


# ---- competitions ------------------------------------------------------------------------------


def test_build_is_deterministic_and_splits_without_overlap() -> None:
    a, b = build(IRIS), build(IRIS.model_dump())
    assert a.id == b.id and np.array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (100, 4) and a.x_test.shape == (50, 4)
    assert sorted(a.classes) == [0, 1, 2]
    assert set(a.train_ids).isdisjoint(a.test_ids)
    other = build(IRIS.model_copy(update={"seed": 4}))
    assert other.id != a.id and not np.array_equal(other.x_train, a.x_train)


@pytest.mark.parametrize("source", ["tabular_clf", "tabular_reg", "series", "diabetes", "digits"])
def test_every_source_builds(source: str) -> None:
    metric = "rmse" if source in ("tabular_reg", "series", "diabetes") else "accuracy"
    comp = build(Recipe(source=source, seed=1, metric=metric, n_train=80, n_test=30))
    assert comp.x_train.shape[0] == 80 and comp.x_test.shape[0] == 30
    assert comp.time_ordered == (source == "series")
    assert not np.isnan(comp.x_train).any()


def test_difficulty_knobs() -> None:
    base = Recipe(source="tabular_clf", seed=2, metric="macro_f1", n_train=400, n_test=100)
    rare = build(base.model_copy(update={"imbalance": 0.1}))
    assert abs(float(np.mean(np.concatenate([rare.y_train, rare.y_test]))) - 0.1) < 0.02
    blank = build(base.model_copy(update={"missing": 0.2}))
    assert 0.17 < float(np.isnan(blank.x_train).mean()) < 0.23
    leak = build(base.model_copy(update={"leak": True}))
    column = leak.features.index(leak.leak)
    assert np.isnan(leak.x_test[:, column]).all()
    assert np.corrcoef(leak.x_train[:, column], leak.y_train)[0, 1] > 0.95
    assert leak.clean_columns == [i for i in range(len(leak.features)) if i != column]


# ---- the grader --------------------------------------------------------------------------------


def test_grader_is_exact_on_hand_made_submissions() -> None:
    comp = build(IRIS)
    truth = comp.y_test.tolist()
    assert score(comp, parse_submission(_csv(comp.test_ids, truth), comp)) == 1.0
    wrong = [(y + 1) % 3 if k < 10 else y for k, y in enumerate(truth)]
    assert score(comp, parse_submission(_csv(comp.test_ids, wrong), comp)) == 40 / 50
    shuffled = _csv(comp.test_ids[::-1], truth[::-1])  # row order does not matter
    assert score(comp, parse_submission(shuffled, comp)) == 1.0


def test_regression_grader_and_baseline() -> None:
    comp = build(Recipe(source="diabetes", seed=0, metric="mae", n_train=200, n_test=40))
    preds = (comp.y_test + 2.0).tolist()
    assert score(comp, parse_submission(_csv(comp.test_ids, preds), comp)) == pytest.approx(2.0)
    base = baseline_prediction(comp)
    assert np.all(base == np.median(comp.y_train))


def test_auc_grader_and_constant_baseline() -> None:
    comp = build(Recipe(source="breast_cancer", seed=0, metric="roc_auc", n_train=200, n_test=60))
    assert score(comp, baseline_prediction(comp)) == 0.5
    perfect = [f"{0.9 if y else 0.1}" for y in comp.y_test]
    assert score(comp, parse_submission(_csv(comp.test_ids, perfect), comp)) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "submission.csv is empty: write the header id,target and one row per test id"),
        ("id,label\n", "the header must be 'id,target', got 'id,label'"),
        ("id,target\n100,1,2\n", "line 2: expected 2 cells (id,target), got 3"),
        ("id,target\nabc,1\n", "line 2: id 'abc' is not an integer"),
        ("id,target\n5,1\n", "line 2: id 5 is not a test id (see test.csv)"),
        ("id,target\n100,1\n100,2\n", "line 3: id 100 appears more than once"),
        ("id,target\n100,x\n", "line 2: prediction 'x' is not a number"),
        ("id,target\n100,nan\n", "line 2: prediction 'nan' is not finite"),
        ("id,target\n100,7\n", "line 2: 7 is not a class label; the classes are [0, 1, 2]"),
        ("id,target\n100,1\n", "49 test id(s) have no prediction: 101, 102, 103, 104, 105 ..."),
    ],
)
def test_invalid_submissions_are_rejected_clearly(text: str, message: str) -> None:
    with pytest.raises(SubmissionError) as err:
        parse_submission(text, build(IRIS))
    assert str(err.value) == message


def test_gain_and_medals() -> None:
    assert gain(0.9, 0.5, 0.9, "max") == pytest.approx(1.0)
    assert gain(0.7, 0.5, 0.9, "max") == pytest.approx(0.5)
    assert gain(12.0, 20.0, 10.0, "min") == pytest.approx(0.8)
    assert [medal(g) for g in (1.0, 0.95, 0.8, 0.5)] == ["gold", "silver", "bronze", None]
    with pytest.raises(ValueError, match="does not beat the baseline"):
        gain(0.5, 0.6, 0.6, "max")


# ---- the tree ----------------------------------------------------------------------------------


def test_tree_operations_and_errors() -> None:
    tree = SolutionTree()
    root = tree.add_root("a = 1\nprint(a)\n", "first")
    child = tree.patch(root.id, "a = 1", "a = 2", "bump")
    assert (child.parent, child.code, tree.selected) == (1, "a = 2\nprint(a)\n", 2)
    with pytest.raises(TreeError, match="does not occur in node 1's code"):
        tree.patch(1, "b = 3", "b = 4")
    with pytest.raises(TreeError, match="occurs 2 times"):
        tree.patch(1, "a", "b")
    with pytest.raises(TreeError, match="no node 9; nodes: 1, 2"):
        tree.get(9)
    with pytest.raises(TreeError, match="node 2 is draft: only an executed node"):
        tree.commit(2, "id,target\n")
    tree.invalidate(1, "leak")
    assert tree.nodes[1].status == "invalidated" and tree.nodes[1].invalid_reason == "leak"


VALID = "submission valid (3 rows)"


def test_replay_skips_failed_calls() -> None:
    calls = [
        Call("write_full_code", {"code": "x = 1\n", "plan": "p"}, "Created node 1"),
        Call("patch_code", {"node_id": 1, "old": "zzz", "new": "y"}, "Error: ...", "bad"),
        Call("patch_code", {"node_id": 1, "old": "1", "new": "2"}, "Created node 2"),
        Call(
            "execute_code",
            {"node_id": 2},
            "node 2: ok, validation_score=0.75, submission valid (3 rows);",
        ),
        Call("execute_code", {"node_id": 1}, "node 1: failed, submission invalid; NameError: q"),
        Call("invalidate_node", {"node_id": 1, "reason": "buggy"}, "Invalidated node 1: buggy."),
        Call("update_answer", {"node_id": 2}, "Committed.\nsubmission.csv:\nid,target\n1,2\n"),
    ]
    tree = replay(calls)
    assert [(n.id, n.parent, n.status) for n in tree.nodes.values()] == [
        (1, None, "invalidated"),
        (2, 1, "ok"),
    ]
    assert tree.nodes[2].metric == 0.75 and tree.nodes[1].error == "NameError: q"
    assert tree.answer == 2 and tree.nodes[2].submission == "id,target\n1,2\n"


# ---- the tools in the sandbox ------------------------------------------------------------------


BOOM = "raise ValueError('boom')"
GOOD = """
import csv
rows = list(csv.reader(open('test.csv')))[1:]
print('validation_score: 0.5')
with open('submission.csv', 'w') as f:
    f.write('id,target\\n' + ''.join(f'{r[0]},0\\n' for r in rows))
"""


def _call(name: str, **arguments: object) -> ToolCall:
    import json

    return ToolCall(id="c", function=FunctionCall(name=name, arguments=json.dumps(arguments)))


def test_tools_run_in_the_sandbox(tmp_path: Path) -> None:
    task = Task(
        id="t",
        domain="mle",
        instruction="",
        metadata={"recipe": IRIS.model_dump(), "time_limit_s": 30},
    )
    tools = build_toolset(
        [
            "write_full_code",
            "patch_code",
            "execute_code",
            "update_answer",
            "invalidate_node",
            "list_nodes",
            "get_current_answer",
        ]
    )

    async def session() -> list[str]:
        ctx = ToolContext("ep", tmp_path / "ep", task=task)
        out = []
        try:
            for call in [
                _call("write_full_code", code=GOOD, plan="constant"),
                _call("execute_code"),
                _call("patch_code", node_id=1, old="0.5", new="0.6"),
                _call(
                    "patch_code", node_id=2, old="f.write", new="raise ValueError('boom'); f.write"
                ),
                _call("execute_code", node_id=3),
                _call("update_answer", node_id=3),
                _call("update_answer", node_id=1),
                _call("invalidate_node", node_id=1, reason="constant model"),
                _call("get_current_answer"),
                _call("list_nodes"),
            ]:
                out.append((await tools.execute(call, ctx)).content)
        finally:
            await ctx.aclose()
        return out

    obs = asyncio.run(session())
    workdir = tmp_path / "ep" / "mle"
    public = {"train.csv", "test.csv", "sample_submission.csv", "description.md"}
    assert {p.name for p in workdir.iterdir()} == public | {"submission.csv"}
    assert (workdir / "test.csv").read_text().splitlines()[0] == "id," + ",".join(
        build(IRIS).features
    )  # no target column: the labels stay in this process
    assert obs[1].startswith("node 1: ok, validation_score=0.5, submission valid (50 rows);")
    assert obs[4].startswith("node 3: failed, submission invalid; ValueError: boom")
    assert 'File "solution.py"' in obs[4]
    assert obs[5] == (
        "Error: node 3 is failed (ValueError: boom): only an executed node with a validation "
        "score and a valid submission can be the answer"
    )
    assert obs[6].startswith(
        "Committed node 1 (validation_score=0.5) as the answer.\nsubmission.csv:\nid,target\n"
    )
    assert obs[7].endswith("It was the committed answer; there is none now.")
    assert obs[8] == "No answer is committed yet: use update_answer."
    assert "node 2 (child of 1): draft" in obs[9] and "node 1 (root): invalidated" in obs[9]


def test_execute_code_enforces_the_time_limit(tmp_path: Path) -> None:
    meta = {"recipe": IRIS.model_dump(), "time_limit_s": 2}
    task = Task(id="t", domain="mle", instruction="", metadata=meta)
    tools = build_toolset(["write_full_code", "execute_code", "list_nodes"])

    async def session() -> list[str]:
        ctx = ToolContext("ep", tmp_path / "ep", task=task)
        try:
            calls = [
                _call("write_full_code", code="while True:\n    pass\n"),
                _call("execute_code"),
            ]
            return [(await tools.execute(c, ctx)).content for c in calls]
        finally:
            await ctx.aclose()

    obs = asyncio.run(session())
    assert obs[1].splitlines()[0] == (
        "node 1: failed, submission invalid; execution exceeded the time limit of 2 s and was "
        "killed. The interpreter's state (variables, imports, functions) is lost and the output "
        "of this call too; the next call starts a fresh interpreter. Files written to the "
        "working directory remain."
    )
