"""The tool-calling domain: worlds and persona, plan search and screening, the scripted expert
through the real harness, the verifier's outcome and rubrics, loss masks and registration."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import Status, Task, Trajectory
from longhorizon.domains import TOOL, registry
from longhorizon.domains.tool import (
    ToolLevel,
    expert_script,
    final_state,
    heldout_tasks,
    propose_task,
    screen,
)
from longhorizon.domains.tool.tasks import run_plan
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.kag import EdgeType, KnowledgeActionGraph, NodeType
from longhorizon.models.render import ChatRenderer
from longhorizon.rl.samples import VerdictKinds, process_reward
from longhorizon.tools.worlds import Session, persona_reply

LEVEL = ToolLevel(expert_error_rate=0.0)


def _sound(n: int, seed: int = 0, target: str | None = None) -> list[Task]:
    rng, out = random.Random(seed), []
    while len(out) < n:
        task = propose_task(LEVEL, rng, world_seed=rng.randrange(10**6))
        if screen(task) is None and (target is None or task.metadata["target"] == target):
            out.append(task)
    return out


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def run(task: Task, renderer: ChatRenderer, tmp_path: Path, **expert: object) -> Trajectory:
    runner = EpisodeRunner(
        ScriptedAgent(renderer, expert_script(task, **expert)),  # type: ignore[arg-type]
        TOOL.toolset,
        HarnessConfig(workdir=tmp_path / "work"),
        verify=TOOL.verify,
    )
    return asyncio.run(runner.run(task, task.id))


def verdicts(traj: Trajectory) -> dict[str, bool]:
    return {v.verifier: v.passed for v in traj.verdicts}


# ---- persona and screening -------------------------------------------------------------------


def test_persona_reveals_details_only_when_asked() -> None:
    persona = {"details": {"email": "a@b.test", "address": "4 Quay Rd"}, "confirm_id": "O1"}
    assert persona_reply(persona, "What is your email?") == "My email is a@b.test."
    assert "4 Quay Rd" not in persona_reply(persona, "What is your email?")
    assert persona_reply(persona, "What is the new address?") == "My address is 4 Quay Rd."
    assert "a@b.test" not in persona_reply(persona, "How can I help?")
    assert "Sorry" in persona_reply(persona, "Anything else?")
    assert persona_reply(persona, "Please confirm: shall I cancel O1?").startswith("Yes")
    assert persona_reply(persona, "Please confirm: shall I cancel O2?").startswith("No")


def test_screening_rejects_a_planted_unreachable_goal() -> None:
    task = _sound(1, target="cancel_order")[0]
    meta = json.loads(json.dumps(task.metadata))
    session = Session.open(meta["world"], meta["world_seed"])
    order_id = meta["persona"]["confirm_id"]
    # plant: a world where the order is already delivered (cancel's precondition fails)
    delivered = [
        r["order_id"] for r in session.rows("SELECT * FROM orders WHERE status = 'delivered'")
    ]
    assert order_id not in delivered
    for seed in range(meta["world_seed"] + 1, meta["world_seed"] + 500):
        other = Session.open("retail", seed)
        rows = other.rows("SELECT * FROM orders WHERE status = 'delivered'")
        unique = [
            r
            for r in rows
            if len(
                other.rows(
                    "SELECT * FROM orders WHERE user_id = ? AND item = ?", (r["user_id"], r["item"])
                )
            )
            == 1
        ]
        if unique:
            break
    row = unique[0]
    user = other.one("users", "user_id", row["user_id"])
    meta["world_seed"] = seed
    meta["user_id"] = row["user_id"]
    meta["persona"]["details"] = {"email": user["email"], "reason": "no longer needed"}
    meta["persona"]["details"] |= (
        {"order_id": row["order_id"]}
        if any(s.get("user") == "order_id" for st in meta["plan"] for s in st["args"].values())
        else {}
    )
    meta["select"] = {"list_orders": {"item": row["item"]}}
    planted = task.model_copy(update={"metadata": meta})
    reason = screen(planted)
    assert reason is not None and reason.startswith("unreachable:"), reason


def test_screening_reasons_cover_the_four_rules() -> None:
    rng, seen = random.Random(3), set()
    for _ in range(400):
        reason = screen(propose_task(LEVEL, rng, world_seed=rng.randrange(10**6)))
        seen.add((reason or "ok").split(":")[0])
    assert {"ok", "underspecified", "unreachable", "not_executable"} <= seen


def test_later_calls_depend_on_earlier_results() -> None:
    for task in _sound(20, seed=5):
        plan = task.metadata["plan"]
        assert plan[0]["tool"] == "find_user"
        held = {"order_id", "booking_id"} & set(task.metadata["persona"]["details"])
        assert held or any("step" in s for st in plan[1:] for s in st["args"].values())


# ---- expert, verifier, rubrics ---------------------------------------------------------------


def test_expert_solves_its_tasks_and_the_verifier_accepts(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = _sound(12, seed=1)
    assert {t.metadata["world"] for t in tasks} == {"retail", "travel"}
    for task in tasks:
        traj = run(task, renderer, tmp_path)
        assert traj.status is Status.COMPLETED, traj.status_reason
        assert all(verdicts(traj).values()), traj.verdicts
        asks = [s for s in traj.steps if s.action.function.name == "ask_user"]
        assert asks and all(not s.observation.startswith("Sorry") for s in asks)


def test_a_destructive_call_without_confirmation_fails_the_policy_rubric(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    task = _sound(1, seed=2, target="cancel_order")[0]
    expert = expert_script(task, error_rate=0.0)
    expert.mistake = "no_confirm"
    runner = EpisodeRunner(
        ScriptedAgent(renderer, expert),
        TOOL.toolset,
        HarnessConfig(workdir=tmp_path / "w"),
        verify=TOOL.verify,
    )
    traj = asyncio.run(runner.run(task, task.id))
    got = verdicts(traj)
    assert got["tool_outcome"]  # the state is right ...
    assert not got["tool_policy"] and not got["tool_confirmed"]  # ... the process is not
    kinds = VerdictKinds(TOOL.summary_verifiers, TOOL.rubric_verifiers)
    assert process_reward(traj, kinds) == 0.5  # PAPO's process reward: 2 of 4 rubrics


def test_recoverable_typo_still_passes(renderer: ChatRenderer, tmp_path: Path) -> None:
    task = _sound(1, seed=4, target="cancel_booking")[0]
    expert = expert_script(task)
    expert.mistake = "typo"
    traj = asyncio.run(
        EpisodeRunner(
            ScriptedAgent(renderer, expert),
            TOOL.toolset,
            HarnessConfig(workdir=tmp_path / "w"),
            verify=TOOL.verify,
        ).run(task, task.id)
    )
    assert any(s.error for s in traj.steps)
    assert all(verdicts(traj).values()), traj.verdicts


def test_a_wrong_final_state_fails_the_outcome(renderer: ChatRenderer, tmp_path: Path) -> None:
    task = _sound(1, seed=6, target="update_address")[0]
    traj = run(task, renderer, tmp_path)
    assert verdicts(traj)["tool_outcome"]
    wrong = task.model_copy(update={"metadata": {**task.metadata, "goal": run_plan_initial(task)}})
    assert not verdicts(traj.model_copy(update={"verdicts": TOOL.verify(wrong, traj)}))[
        "tool_outcome"
    ]
    assert final_state(task, traj) == task.metadata["goal"]


def run_plan_initial(task: Task) -> dict[str, object]:
    session = Session.open(task.metadata["world"], task.metadata["world_seed"])
    return json.loads(json.dumps(session.snapshot()))


def test_user_turns_carry_loss_mask_zero(renderer: ChatRenderer, tmp_path: Path) -> None:
    task = _sound(1, seed=7)[0]
    traj = run(task, renderer, tmp_path)
    (sequence,) = traj.token_sequences()
    replies = [s.observation for s in traj.steps if s.action.function.name == "ask_user"]
    assert replies
    tokenizer = renderer.tokenizer
    trained = tokenizer.decode(
        [t for t, m in zip(sequence.input_ids, sequence.loss_mask, strict=True) if m]
    )
    for reply in replies:
        assert reply not in trained
    assert "ask_user" in trained  # the model's own questions are trained on


def test_reference_plan_reaches_the_goal() -> None:
    for task in _sound(10, seed=8):
        session, _ = run_plan(task.metadata)
        assert json.loads(json.dumps(session.snapshot())) == task.metadata["goal"]


# ---- registration, KAG, held-out --------------------------------------------------------------


def test_tool_is_registered_with_rubrics_and_its_bench() -> None:
    assert registry.get("tool") is TOOL
    assert registry.by_bench("tool-heldout") is TOOL
    assert TOOL.rubric_verifiers == {
        "tool_schema",
        "tool_grounded",
        "tool_policy",
        "tool_confirmed",
    }


def test_heldout_is_disjoint_and_a_prefix() -> None:
    short, long = heldout_tasks(LEVEL, 5, 1_000_000), heldout_tasks(LEVEL, 10, 1_000_000)
    assert [t.id for t in short] == [t.id for t in long[:5]]
    assert all(t.metadata["world_seed"] >= 1_000_000 for t in long)
    assert not {t.id for t in long} & {t.id for t in _sound(30)}


def test_kag_holds_the_tool_interaction_graph(tmp_path: Path) -> None:
    kag = KnowledgeActionGraph(tmp_path / "kag.db")
    TOOL.open_world(LEVEL, 0, tmp_path).load_kag(kag)  # type: ignore[misc]
    tools = kag.nodes("tool", NodeType.TOOL)
    assert {"tool:cancel_order", "tool:ask_user"} <= {n.id for n in tools}
    assert {"tool:get_order", "resource:order"} <= set(kag.neighbours("tool:list_orders"))
    assert "tool:cancel_order" in kag.neighbours("state:order.pending", EdgeType.DEPENDENCY)
    assert kag.neighbours("tool:cancel_order", EdgeType.ACTION_TRANSITION) == [
        "state:order.cancelled"
    ]
    assert "state:booking.booked" in kag.neighbours("verifier:tool_outcome", EdgeType.VERIFICATION)
