"""The MLE domain: the scripted expert through the real harness and sandbox passes the one
verifier, a planted leak is caught, the tree round-trips through the KAG, the held-out split
is disjoint, medals, registration and a synthesis run end to end."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import Task, Trajectory
from longhorizon.core.messages import Message
from longhorizon.core.trajectory import Verdict
from longhorizon.domains import MLE, registry, synthesize
from longhorizon.domains.mle import (
    MLELevel,
    draw_recipe,
    expert_script,
    heldout_region,
    heldout_tasks,
    load_tree,
    record_tree,
    solution_code,
    task_from_recipe,
    tree_of,
)
from longhorizon.domains.mle.expert import FOREST, tool_call
from longhorizon.evaluation.mlebench import with_medal
from longhorizon.evaluation.runner import bench_names
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.kag import EdgeType, KnowledgeActionGraph, NodeType
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.mle import Recipe, SolutionTree

LEVEL = MLELevel(n_train=120, n_test=40, expert_error_rate=0.0)


def _task(**recipe: object) -> Task:
    fields = {"seed": 5, "n_train": 120, "n_test": 40, **recipe}
    return task_from_recipe(Recipe.model_validate(fields), LEVEL)


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def run(task: Task, renderer: ChatRenderer, workdir: Path, script: object = None) -> Trajectory:
    agent = ScriptedAgent(renderer, script or expert_script(task))  # type: ignore[arg-type]
    runner = EpisodeRunner(agent, MLE.toolset, HarnessConfig(workdir=workdir), verify=MLE.verify)
    return asyncio.run(runner.run(task, f"{task.id}/solve"))


def verdicts(traj: Trajectory) -> dict[str, bool]:
    return {v.verifier: v.passed for v in traj.verdicts}


def naive(task: Task) -> object:
    """Commits a random forest on every column (the leak included) without looking."""
    code = solution_code(task.metadata, FOREST[task.metadata["competition"]["kind"]], [])
    turns = iter(
        [
            tool_call("write_full_code", code=code, plan="forest on everything"),
            tool_call("execute_code", node_id=1),
            tool_call("update_answer", node_id=1),
            "<answer>Committed node 1.</answer>",
        ]
    )
    return lambda messages: next(turns)


@pytest.mark.parametrize(
    "recipe",
    [
        {"source": "tabular_clf", "metric": "roc_auc", "interactions": True, "missing": 0.1},
        {"source": "series", "metric": "rmse", "noise": 0.1},
    ],
)
def test_expert_passes_the_verifier(
    recipe: dict[str, object], renderer: ChatRenderer, tmp_path: Path
) -> None:
    task = _task(**recipe)
    traj = run(task, renderer, tmp_path)
    assert verdicts(traj) == {"mle_submission": True, "mle_reliable": True}
    tree = tree_of(traj)
    roots = [n for n in tree.nodes.values() if n.parent is None]
    patches = [n for n in tree.nodes.values() if n.parent is not None]
    assert len(roots) == 3 and len(patches) >= 1
    assert tree.answer is not None and tree.nodes[tree.answer].status == "ok"
    details = traj.verdicts[0].details
    assert details["gain"] >= task.metadata["margin"] and details["node"] == tree.answer


def test_a_planted_leak_is_caught(renderer: ChatRenderer, tmp_path: Path) -> None:
    task = _task(source="tabular_clf", metric="accuracy", leak=True)
    assert task.metadata["recipe"]["leak"]
    # the expert's audit finds the column, invalidates the root and commits a clean node
    traj = run(task, renderer, tmp_path / "expert")
    tree = tree_of(traj)
    assert tree.nodes[1].status == "invalidated"
    assert (tree.nodes[1].invalid_reason or "").startswith("leakage: uses ")
    assert verdicts(traj) == {"mle_submission": True, "mle_reliable": True}
    # a solver that trusts the leak: its validation is near perfect, the reliability check fails
    blind = run(task, renderer, tmp_path / "naive", naive(task))
    reliable = next(v for v in blind.verdicts if v.verifier == "mle_reliable")
    assert not reliable.passed and reliable.details["optimism"] > task.metadata["max_gap"]
    assert reliable.details["validation_score"] > 0.95


def test_tree_round_trips_through_the_kag(renderer: ChatRenderer, tmp_path: Path) -> None:
    task = _task(source="iris", metric="accuracy", n_train=100, n_test=50)
    slip = expert_script(task, error_rate=1.0)  # a crashing patch: a failed node
    traj = run(task, renderer, tmp_path, slip)
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        kag.record_trajectory(traj, "solve")
        written = record_tree(kag, task, traj.id)
        loaded = load_tree(kag, traj.id)
        edges = kag.neighbours(f"{traj.id}#node2", EdgeType.DEPENDENCY)
        artifacts = kag.nodes("mle", NodeType.ARTIFACT)
    replayed = tree_of(traj)

    def shape(tree: SolutionTree) -> list[tuple[object, ...]]:
        return [(n.id, n.parent, n.status, n.metric, n.invalid_reason) for n in tree.nodes.values()]

    assert shape(written) == shape(replayed) == shape(loaded)
    assert loaded.answer == replayed.answer
    assert any(n.status == "failed" for n in loaded.nodes.values())  # negative evidence kept
    assert len(artifacts) == len(replayed.nodes)
    assert edges == [f"mle-competition:{task.metadata['competition']['id']}"]


def test_heldout_is_disjoint_from_synthesis() -> None:
    rng = random.Random(0)
    proposed = [draw_recipe(LEVEL, rng, heldout=False) for _ in range(60)]
    held = [Recipe.model_validate(t.metadata["recipe"]) for t in heldout_tasks(LEVEL, 6, 10**6)]
    assert not any(heldout_region(r) for r in proposed)
    assert all(heldout_region(r) for r in held)
    assert "wine" not in {r.source for r in proposed}
    again = heldout_tasks(LEVEL, 3, 10**6)
    assert [t.id for t in again] == [t.id for t in heldout_tasks(LEVEL, 6, 10**6)][:3]


def test_medal_of_an_item() -> None:
    details = {"medal": "silver", "gain": 0.93, "test_score": 0.8}
    verdict = Verdict(verifier="mle_submission", passed=True, score=0.93, details=details)
    traj = Trajectory.model_construct(id="x", verdicts=[verdict])  # only its verdicts are read
    item = ItemResult(bench="mle-heldout", item_id="t", seed=0, score=1.0, details={})
    medalled = with_medal(item, traj)
    assert medalled.bench == "mle-medals"
    assert (medalled.details["medal"], medalled.details["medal_rank"]) == ("silver", 2)
    assert medalled.details["valid_submission"] is True
    assert with_medal(item, None).details["valid_submission"] is False


def test_registered_with_its_benches_and_tools() -> None:
    assert registry.get("mle") is MLE
    assert registry.by_bench("mle-heldout") is MLE and registry.by_bench("mle-medals") is MLE
    assert {"mle-heldout", "mle-medals"} <= set(bench_names())
    assert "execute_code" in MLE.tools and "execute_bash" not in MLE.tools
    assert MLE.required_turns(LEVEL) <= MLE.protocol.budgets.max_turns


def test_synthesis_end_to_end(tmp_path: Path) -> None:
    level = {"n_train": 100, "n_test": 40, "generated_share": 1.0, "leak_share": 0.0}
    report = asyncio.run(synthesize(MLE, 2, tmp_path, level=level, concurrency=2))
    assert report.accepted == 2
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        artifacts = kag.nodes("mle", NodeType.ARTIFACT)
        accepted = kag.tasks("mle")
    assert len(artifacts) >= 2 * 4 and len(accepted) >= 2
    roots = [n for n in artifacts if n.payload["parent"] is None]
    assert len(roots) >= 2 * 3
    assert any(n.payload["status"] == "invalidated" for n in artifacts)


def test_medal_bench_runs_episodes(renderer: ChatRenderer, tmp_path: Path) -> None:
    from longhorizon.evaluation import mlebench
    from longhorizon.evaluation.options import EvalOptions

    items = heldout_tasks(LEVEL, 1, 10**6)
    experts = {t.instruction: expert_script(t) for t in items}

    def dispatch(messages: list[Message]) -> str:  # one agent for the bench: the task's expert
        question = next(m.content for m in messages if m.role == "user")
        return experts[question or ""](messages)

    agent = ScriptedAgent(renderer, dispatch)
    options = EvalOptions(show_progress=False, levels={"mle": LEVEL.model_dump()})
    results = asyncio.run(mlebench.run(agent, items, 0, options, bench_dir=tmp_path))
    assert [r.bench for r in results] == ["mle-medals"]
    details = results[0].details
    assert details["valid_submission"] is True and details["medal"] in ("bronze", "silver", "gold")
    assert details["gain"] >= 0.75 and results[0].score == 1.0
