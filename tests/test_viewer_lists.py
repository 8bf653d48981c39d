"""Lazy trajectory lists: pages across shard boundaries, filters against a plain reference, only
the page's lines parsed, torn tails ignored, a growing store followed; the conversation and token
views of real scripted episodes."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import (
    Budgets,
    ContextStrategy,
    Protocol,
    Task,
    Trajectory,
    TrajectoryStore,
)
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer
from longhorizon.viewer.conversation import conversation
from longhorizon.viewer.discover import discover
from longhorizon.viewer.listing import Filters, TrajectoryLists
from longhorizon.viewer.paths import OutsideRun, RunFiles
from longhorizon.viewer.tokens import Decoder, sequence_view

CALL = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n</tool_call>'
# What the scripted model does in episode i: answer at once, call then answer, call until the
# turn limit (rolled back, answer forced), or stop without an answer.
PLANS = ("answer", "call", "loop", "silent")


def _script(plan: str):  # type: ignore[no-untyped-def]
    def script(messages: list) -> str:  # type: ignore[type-arg]
        last = messages[-1]
        if "final answer" in (last.content or "") or (plan == "call" and last.role == "tool"):
            return "<answer>5</answer>"
        return {"answer": "<answer>5</answer>", "silent": "I do not know."}.get(plan, CALL)

    return script


@pytest.fixture(scope="module")
def episodes(tiny_llama_path: str, tmp_path_factory: pytest.TempPathFactory) -> list[Trajectory]:
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))
    task = Task(
        id="add",
        domain="arith",
        instruction="What is 2 + 3?",
        answer="5",
        protocol=Protocol(tools=("calculator",), budgets=Budgets(max_turns=3)),
    )
    work = tmp_path_factory.mktemp("work")
    out = []
    for i in range(10):
        plan = PLANS[i % len(PLANS)]
        runner = EpisodeRunner(
            ScriptedAgent(renderer, _script(plan)),
            lambda t: build_toolset(t.protocol.tools),
            HarnessConfig(workdir=work),
            verify=verify_answer,
        )
        out.append(asyncio.run(runner.run(task, f"ep-{i:02d}-{plan}")))
    return out


@pytest.fixture
def run(tmp_path: Path, episodes: list[Trajectory]) -> Path:
    with TrajectoryStore(tmp_path / "synth" / "arith" / "trajectories", shard_size=3) as store:
        store.extend(episodes)  # 4 shards: 3 + 3 + 3 + 1
    return tmp_path


def test_pages_cross_shards_and_parse_only_their_lines(
    run: Path, episodes: list[Trajectory]
) -> None:
    layout = discover(run)
    (info,) = layout.trajectory_stores()
    assert (info.ref, info.stage, info.split, info.domain) == (
        "synth/arith/trajectories",
        "synth",
        "train",
        "arith",
    )
    lists = TrajectoryLists(run, [info])
    page = lists.page([info.ref], Filters(), offset=2, limit=5)
    assert [r.id for r in page.rows] == [t.id for t in episodes[2:7]]
    assert page.has_next and page.total is None  # the last shard was not read
    assert page.estimate is not None and 8 <= page.estimate <= 12  # from its size
    assert len(lists.indexes[info.ref].rows) == 6  # the page and the row after it, no more
    last = lists.page([info.ref], Filters(), offset=8, limit=5)
    assert [r.id for r in last.rows] == [t.id for t in episodes[8:]] and not last.has_next
    assert last.total == 10
    again = lists.page([info.ref], Filters(), offset=0, limit=5)
    assert again.total == 10  # every shard was counted once: the total is exact from now on


def test_filters_agree_with_a_plain_reference(run: Path, episodes: list[Trajectory]) -> None:
    (info,) = discover(run).trajectory_stores()
    lists = TrajectoryLists(run, [info])
    by_status = {t.status.value for t in episodes}
    assert by_status == {"COMPLETED", "FAILED"}
    cases = [
        (Filters(status="FAILED"), lambda t: t.status.value == "FAILED"),
        (Filters(verdict="pass"), lambda t: t.passed),
        (Filters(min_tools=2), lambda t: t.usage.tool_calls >= 2),
        (Filters(max_turns=1, verdict="fail"), lambda t: t.usage.model_calls <= 1 and not t.passed),
        (Filters(reason="turn limit"), lambda t: "turn limit" in (t.status_reason or "")),
    ]
    for filters, keep in cases:
        want = [t.id for t in episodes if keep(t)]
        assert want, filters
        page = lists.page([info.ref], filters, offset=0, limit=2)
        assert [r.id for r in page.rows] == want[:2] and page.has_next == (len(want) > 2)
        rest = lists.page([info.ref], filters, offset=2, limit=50)
        assert [r.id for r in rest.rows] == want[2:] and rest.total == len(want)


def test_torn_tails_are_ignored_and_growth_is_followed(
    run: Path, episodes: list[Trajectory]
) -> None:
    (info,) = discover(run).trajectory_stores()
    lists = TrajectoryLists(run, [info])
    assert lists.page([info.ref], Filters(), 0, 50).total == 10
    shard = sorted((run / info.ref).glob("part-*.jsonl"))[-1]
    line = episodes[0].model_copy(update={"id": "late"}).model_dump_json()
    with shard.open("a") as f:
        f.write(line[:100])  # a writer killed mid-line
    assert lists.page([info.ref], Filters(), 0, 50).total == 10
    with shard.open("a") as f:
        f.write(line[100:] + "\n")  # the writer finished the line
    page = lists.page([info.ref], Filters(), 0, 50)
    assert page.total == 11 and page.rows[-1].id == "late"
    index = lists.indexes[info.ref]
    assert json.loads(index.record("", "ep-04-answer") or b"{}")["id"] == "ep-04-answer"
    assert index.record("", "no-such-id") is None


def test_conversation_marks_the_rollback_and_the_forced_answer(episodes: list[Trajectory]) -> None:
    loop = next(t for t in episodes if t.id.endswith("loop"))
    entries = conversation(loop)
    roles = [(e.role, e.discarded, e.tags) for e in entries]
    assert roles == [
        ("user", False, ()),
        ("assistant", False, ()),
        ("tool", False, ()),
        ("assistant", False, ()),
        ("tool", False, ()),
        ("assistant", True, ()),
        ("tool", True, ()),
        ("tool", False, ("re-sent after the rollback",)),  # the harness sends it again
        ("user", False, ("forced final answer",)),
        ("assistant", False, ()),
    ]
    assert entries[1].tool_calls[0].arguments == '{\n  "expression": "2 + 3"\n}'


BOUNDARY = {
    "restart": "context boundary: restart (the task starts again)",
    "compaction": "context boundary: compaction (the digest replaces the conversation)",
    "keep_last_k": "context boundary: older observations masked (keep_last_k)",
}


@pytest.mark.parametrize("kind", sorted(BOUNDARY))
def test_context_strategies_keep_calls_and_boundaries_straight(
    kind: str, tiny_llama_path: str, tmp_path: Path
) -> None:
    """Long turns in a small L_ctx: the harness restarts, compacts or masks; every model call
    is shown once, in order, and each new context is marked."""

    def script(messages: list) -> str:  # type: ignore[type-arg]
        last = messages[-1].content or ""
        if "final answer" in last:
            return "<answer>5</answer>"
        if messages[-1].role == "user" and len(messages) > 2 and "Digest" not in last:
            return "I computed 2 + 3 = 5."  # the compaction digest
        return "thinking " * 40 + CALL

    task = Task(
        id="add",
        domain="arith",
        instruction="What is 2 + 3?",
        answer="5",
        protocol=Protocol(
            tools=("calculator",),
            budgets=Budgets(max_turns=8, max_context_tokens=700),
            context=ContextStrategy(kind=kind, max_restarts=1, keep_last=1, compact_at=0.6),
        ),
    )
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))
    runner = EpisodeRunner(
        ScriptedAgent(renderer, script),
        lambda t: build_toolset(t.protocol.tools),
        HarnessConfig(workdir=tmp_path, reserve_tokens=32),
    )
    traj = asyncio.run(runner.run(task, "e"))
    entries = conversation(traj)
    shown = [(e.call, e.discarded) for e in entries if e.role == "assistant"]
    assert shown == [(k, c.discarded) for k, c in enumerate(traj.calls)]
    boundaries = [e.text for e in entries if e.role == "boundary"]
    new_contexts = sum(c.parent is None for c in traj.calls[1:])
    assert len(boundaries) >= new_contexts >= 1
    assert all(b.startswith(BOUNDARY[kind]) for b in boundaries)


def test_token_view_is_the_training_sequence(
    episodes: list[Trajectory], tiny_llama_path: str
) -> None:
    loop = next(t for t in episodes if t.id.endswith("loop"))
    decode = Decoder(Path(tiny_llama_path))
    (seq,) = loop.token_sequences()
    view = sequence_view(loop, 0, decode)
    assert [c.id for c in view.cells] == seq.input_ids
    assert [int(c.trained) for c in view.cells] == seq.loss_mask
    starts = [c.pos for c in view.cells if c.call_start and c.generated]
    kept = [i for i, c in enumerate(loop.calls) if not c.discarded]
    assert len(starts) == len(kept)  # one completion boundary per kept call
    assert all(c.generated == c.trained for c in view.cells)
    text = "".join(c.text for c in view.cells)
    assert text == AutoTokenizer.from_pretrained(tiny_llama_path).decode(seq.input_ids)


def test_names_resolve_inside_the_run_only(tmp_path: Path) -> None:
    (tmp_path / "run" / "a").mkdir(parents=True)
    (tmp_path / "secret").write_text("no")
    (tmp_path / "run" / "out").symlink_to(tmp_path / "secret")
    files = RunFiles({"run": tmp_path / "run"})
    assert files.resolve("a/../a") == (tmp_path / "run" / "a").resolve()
    for name in ("../secret", "/etc/passwd", "out", "a/../../secret", "a\x00b"):
        with pytest.raises(OutsideRun, match="is outside the run directory"):
            files.resolve(name)
    with pytest.raises(OutsideRun, match="unknown run 'other'"):
        files.resolve("a", root="other")


def test_cli_serves_the_run_and_warns_off_loopback(run: Path) -> None:
    command = [sys.executable, "-m", "longhorizon.cli.main", "view", str(run)]
    command += ["--port", "0", "--host", "0.0.0.0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        warning, serving = proc.stdout.readline(), proc.stdout.readline()
        assert warning.startswith("WARNING: serving on 0.0.0.0: anyone who can reach")
        port = re.search(r"http://0\.0\.0\.0:(\d+)/", serving)
        assert port is not None, serving
        with urllib.request.urlopen(f"http://127.0.0.1:{port.group(1)}/api/ping") as response:
            assert json.loads(response.read())["viewer"] == "longhorizon"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_viewing_writes_nothing_into_the_run(run: Path, episodes: list[Trajectory]) -> None:
    from starlette.testclient import TestClient

    from longhorizon.kag import KnowledgeActionGraph, TaskStatus
    from longhorizon.viewer import ViewerState, create_app

    task = Task(id="add", domain="arith", instruction="What is 2 + 3?", answer="5")
    with KnowledgeActionGraph(run / "synth" / "arith" / "kag.db") as kag:
        kag.record_task(task, TaskStatus.REJECTED, "shortcut: the guesser answered")
        kag.record_trajectory(episodes[1], "solver")
    files = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    client = TestClient(create_app(ViewerState.open({"run": run})))
    store = "synth/arith/trajectories"
    for url in (
        "/",
        f"/trajectories?store={store}&verdict=fail",
        f"/episode?store={store}&id={episodes[2].id}",
        f"/tokens?store={store}&id={episodes[2].id}",
        "/tasks?domain=arith&status=rejected",
        "/task?domain=arith&id=add",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
    page = client.get("/task?domain=arith&id=add").text
    assert "shortcut: the guesser answered" in page and episodes[1].id in page
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == files  # no file made or touched
