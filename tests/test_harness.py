"""The agent loop driven by a scripted policy: budgets, rollback-and-force, every context
strategy and every error path, deterministically; token records stay exact throughout."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import (
    Budgets,
    ContextStrategy,
    Message,
    Protocol,
    Status,
    Task,
    Trajectory,
    TrajectoryStore,
)
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent, run_rollouts
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER, OBSERVATION_REMOVED
from longhorizon.models.alignment import check_alignment
from longhorizon.models.render import ChatRenderer
from longhorizon.models.types import BackendError
from longhorizon.tools import ToolSet, tool
from longhorizon.verifiers import verify_answer


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: first
        b: second
    """
    return a + b


@tool
def crash() -> str:
    """Always fails."""
    raise RuntimeError("disk on fire")


@tool(timeout_s=0.2)
async def slow() -> str:
    """Never finishes in time."""
    await asyncio.sleep(5)
    return "late"


@tool
def echo(text: str) -> str:
    """Echo text back."""
    return text


@tool
def read(n: int) -> str:
    """A page of n words."""
    return "word " * n


TOOLS = ToolSet([add, crash, slow, echo, read])


def call(name: str, **args: object) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def make_task(**protocol: object) -> Task:
    return Task(
        id="t",
        domain="arith",
        instruction="What is 2 + 3?",
        answer="5",
        protocol=Protocol(tools=("add",), **protocol),  # type: ignore[arg-type]
    )


def run(renderer: ChatRenderer, script, task: Task, tmp_path: Path) -> Trajectory:  # type: ignore[no-untyped-def]
    runner = EpisodeRunner(
        ScriptedAgent(renderer, script),
        lambda t: TOOLS,
        HarnessConfig(workdir=tmp_path, reserve_tokens=64),
        verify=verify_answer,
    )
    return asyncio.run(runner.run(task, "e0"))


def assert_token_exact(traj: Trajectory, renderer: ChatRenderer) -> None:
    check_alignment(traj, renderer)


def test_tool_then_answer_completes_and_verifies(renderer: ChatRenderer, tmp_path: Path) -> None:
    def script(messages: list[Message]) -> str:
        return "<answer>5</answer>" if messages[-1].role == "tool" else call("add", a=2, b=3)

    traj = run(renderer, script, make_task(), tmp_path)
    assert traj.status is Status.COMPLETED and traj.passed
    assert traj.final_answer == "5"
    assert [s.observation for s in traj.steps] == ["5"]
    assert traj.usage.model_calls == 2 and traj.usage.tool_calls == 1
    (seq,) = traj.token_sequences()
    assert renderer.decode(seq.input_ids) + "\n" == renderer.text(traj.messages, TOOLS.specs())
    assert_token_exact(traj, renderer)


def test_every_tool_failure_is_an_observation(renderer: ChatRenderer, tmp_path: Path) -> None:
    bad_turn = "\n".join(
        [
            call("nope"),
            call("add", a="x", b=1),
            call("add", a=1),
            call("crash"),
            call("slow"),
            "<tool_call>{broken json</tool_call>",
            '<tool_call>\n{"name": "add"',
        ]
    )

    def script(messages: list[Message]) -> str:
        return "<answer>5</answer>" if messages[-1].role == "tool" else bad_turn

    traj = run(renderer, script, make_task(), tmp_path)
    assert traj.status is Status.COMPLETED
    errors = [s.error for s in traj.steps]
    assert errors[0].startswith("unknown tool 'nope'")
    assert "argument 'a'" in errors[1]
    assert "missing required argument 'b'" in errors[2]
    assert errors[3] == "tool 'crash' failed: RuntimeError: disk on fire"
    assert errors[4] == "tool 'slow' timed out after 0.2 s"
    assert len(errors) == 7 and all(errors)
    assert all(m.content.startswith("Error:") for m in traj.messages if m.role == "tool")


def test_turn_limit_rolls_back_and_forces_an_answer(renderer: ChatRenderer, tmp_path: Path) -> None:
    def script(messages: list[Message]) -> str:
        if "turn limit" in (messages[-1].content or ""):
            return "<answer>5</answer>"
        return call("echo", text=f"turn {len(messages)}")

    traj = run(renderer, script, make_task(budgets=Budgets(max_turns=3)), tmp_path)
    assert traj.status is Status.COMPLETED
    assert traj.status_reason == "answer forced at the turn limit"
    assert [c.discarded for c in traj.calls] == [False, False, True, False]
    (seq,) = traj.token_sequences()  # the rolled-back call is not a training sequence
    assert traj.calls[3].parent == 1
    assert_token_exact(traj, renderer)
    text = renderer.decode(seq.input_ids)
    assert text.count('{"name": "echo", "arguments"') == 2 and "turn limit" in text


def test_no_answer_after_forcing_is_truncated(renderer: ChatRenderer, tmp_path: Path) -> None:
    traj = run(
        renderer,
        lambda m: call("echo", text="again"),
        make_task(budgets=Budgets(max_turns=2)),
        tmp_path,
    )
    assert traj.status is Status.TRUNCATED
    assert traj.status_reason == "turn limit: no answer after the forced prompt"
    assert traj.passed is False


def test_stopping_without_answer_fails(renderer: ChatRenderer, tmp_path: Path) -> None:
    traj = run(renderer, lambda m: "I give up.", make_task(), tmp_path)
    assert traj.status is Status.FAILED
    assert traj.status_reason == "the model stopped without a final answer"


def test_response_budget_truncates(renderer: ChatRenderer, tmp_path: Path) -> None:
    budgets = Budgets(max_response_tokens=4)
    traj = run(
        renderer, lambda m: "a long rambling answer " * 5, make_task(budgets=budgets), tmp_path
    )
    assert traj.status is Status.TRUNCATED
    assert len(traj.calls[0].completion_ids) == 4


def long_echo(messages: list[Message]) -> str:
    if any("limit" in (m.content or "") for m in messages if m.role == "user"):
        return "<answer>5</answer>"
    return call("read", n=60)


def test_hard_cap_forces_answer(renderer: ChatRenderer, tmp_path: Path) -> None:
    budgets = Budgets(max_turns=50, max_context_tokens=800)
    traj = run(renderer, long_echo, make_task(budgets=budgets), tmp_path)
    assert traj.status is Status.COMPLETED
    assert traj.status_reason == "answer forced at the context limit"
    assert [c.discarded for c in traj.calls][-2:] == [True, False]
    assert all(len(s) <= 800 for s in traj.token_sequences())
    assert_token_exact(traj, renderer)


def test_keep_last_k_masks_old_observations(renderer: ChatRenderer, tmp_path: Path) -> None:
    seen: list[list[Message]] = []

    def script(messages: list[Message]) -> str:
        seen.append(list(messages))
        return "<answer>5</answer>" if len(seen) > 8 else call("read", n=60)

    context = ContextStrategy(kind="keep_last_k", keep_last=1, compact_at=0.6)
    budgets = Budgets(max_turns=20, max_context_tokens=1000)
    traj = run(renderer, script, make_task(budgets=budgets, context=context), tmp_path)
    assert traj.status is Status.COMPLETED
    masked = [m for m in seen[-1] if m.content == OBSERVATION_REMOVED]
    assert masked, "older observations must be replaced by the marker"
    kept = [m for m in seen[-1] if m.role == "tool" and m.content != OBSERVATION_REMOVED]
    assert len(kept) == 1
    assert len(traj.token_sequences()) >= 2  # each masking starts a fresh context


def test_compaction_replaces_history_with_a_digest(renderer: ChatRenderer, tmp_path: Path) -> None:
    def script(messages: list[Message]) -> str:
        last = messages[-1].content or ""
        if last == COMPACT_PROMPT:
            return "digest: echoed many times"
        if any(DIGEST_HEADER in (m.content or "") for m in messages):
            return "<answer>5</answer>"
        return call("read", n=60)

    context = ContextStrategy(kind="compaction", compact_at=0.6, max_restarts=2)
    budgets = Budgets(max_turns=30, max_context_tokens=1000)
    traj = run(renderer, script, make_task(budgets=budgets, context=context), tmp_path)
    assert traj.status is Status.COMPLETED and traj.final_answer == "5"
    digests = [m for m in traj.messages if DIGEST_HEADER in (m.content or "")]
    assert len(digests) == 1 and "digest: echoed many times" in digests[0].content


def test_compaction_loop_guard(renderer: ChatRenderer, tmp_path: Path) -> None:
    def script(messages: list[Message]) -> str:
        if messages[-1].content == COMPACT_PROMPT:
            return "z " * 300  # a digest too long to help
        if "limit" in (messages[-1].content or ""):
            return "<answer>5</answer>"
        return call("read", n=60)

    context = ContextStrategy(kind="compaction", compact_at=0.6, max_restarts=3)
    budgets = Budgets(max_turns=30, max_context_tokens=1000)
    traj = run(renderer, script, make_task(budgets=budgets, context=context), tmp_path)
    assert traj.status_reason == "answer forced at the context limit"
    assert sum(DIGEST_HEADER in (m.content or "") for m in traj.messages) == 1


def test_restart_discards_all_up_to_n_times(renderer: ChatRenderer, tmp_path: Path) -> None:
    context = ContextStrategy(kind="restart", max_restarts=2)
    budgets = Budgets(max_turns=40, max_context_tokens=800)
    traj = run(renderer, long_echo, make_task(budgets=budgets, context=context), tmp_path)
    assert traj.status_reason == "answer forced at the context limit"
    fresh = [c for c in traj.calls if c.parent is None]
    assert len(fresh) == 3  # the first context and two restarts


class FailingAgent(ScriptedAgent):
    async def act(self, convo, params):  # type: ignore[no-untyped-def]
        raise BackendError("server at http://127.0.0.1:9 refused the connection")


def test_backend_failure_aborts_and_rollouts_retry_then_skip(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    runner = EpisodeRunner(
        FailingAgent(renderer, lambda m: ""),
        lambda t: TOOLS,
        HarnessConfig(workdir=tmp_path / "w", abort_retries=1),
    )
    store = TrajectoryStore(tmp_path / "s")
    report = asyncio.run(run_rollouts(runner, [make_task()], store, show_progress=False))
    assert report.aborted == 1 and len(store) == 0
    assert "refused the connection" in report.abort_reasons[0]


def test_rollouts_run_concurrently_and_resume(renderer: ChatRenderer, tmp_path: Path) -> None:
    async def script(messages: list[Message]) -> str:
        await asyncio.sleep(0.2)
        return "<answer>5</answer>"

    tasks = [make_task().model_copy(update={"id": f"t{i}"}) for i in range(6)]
    runner = EpisodeRunner(
        ScriptedAgent(renderer, script),
        lambda t: TOOLS,
        HarnessConfig(workdir=tmp_path / "w"),
        verify=verify_answer,
    )
    store = TrajectoryStore(tmp_path / "s")
    start = time.perf_counter()
    report = asyncio.run(run_rollouts(runner, tasks[:4], store, concurrency=4, show_progress=False))
    assert time.perf_counter() - start < 0.2 * 4  # episodes overlapped
    assert report.finished == 4 and report.passed == 4 and report.success_rate == 1.0
    report = asyncio.run(run_rollouts(runner, tasks, store, concurrency=4, show_progress=False))
    assert report.skipped == 4 and report.finished == 2
    assert sorted(store.ids()) == [f"t{i}#0" for i in range(6)]
