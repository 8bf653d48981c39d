"""The knowledge-action graph store on SQLite and PostgreSQL: write-back, walks, queries,
several writers at once, a writer killed mid-transaction, and synthesis into PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Status, Task, Verdict
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType, TaskStatus
from tests.postgres import PostgresServer
from tests.test_core_types import make_trajectory


@pytest.fixture(params=["sqlite", "postgresql"])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty KAG: a SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "kag.db")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.database()


def line_graph(kag: KnowledgeActionGraph, n: int = 6) -> None:
    kag.add_nodes(
        Node(id=f"p{i}", domain="search", type=NodeType.EVIDENCE, label=f"Page {i}")
        for i in range(n)
    )
    kag.add_edges(
        Edge(src=f"p{i}", dst=f"p{i + 1}", type=EdgeType.LINK, domain="search")
        for i in range(n - 1)
    )
    kag.add_edges([Edge(src="p3", dst="p0", type=EdgeType.LINK, domain="search")])


def test_nodes_edges_and_constrained_walks(dsn: str) -> None:
    with KnowledgeActionGraph(dsn) as kag:
        line_graph(kag)
        assert kag.node("p2").label == "Page 2"
        assert kag.neighbours("p3") == ["p0", "p4"]
        walk = kag.random_walk("p0", random.Random(0), 10)
        assert walk == ["p0", "p1", "p2", "p3", "p4", "p5"]  # p3 -> p0 is a revisit
        stop_at_4 = kag.random_walk("p0", random.Random(0), 10, allow=lambda n, path: n != "p4")
        assert stop_at_4 == ["p0", "p1", "p2", "p3"]
        assert [n.id for n in kag.nodes("search", NodeType.EVIDENCE)][:2] == ["p0", "p1"]
        links = kag.edges("search", EdgeType.LINK)
        assert [(e.src, e.dst) for e in links][:4] == [
            ("p0", "p1"),
            ("p1", "p2"),
            ("p2", "p3"),
            ("p3", "p0"),
        ]
        assert len(links) == 6 and kag.edges("search", EdgeType.SUPPORT) == []
        assert kag.edges("other") == []
        text = "Zürich — 東京 ✓"
        kag.add_nodes([Node(id="u", domain="x", type=NodeType.FACT, label=text, payload={text: 1})])
        assert kag.node("u") == Node(
            id="u", domain="x", type=NodeType.FACT, label=text, payload={text: 1}
        )


def test_tasks_trajectories_and_evidence_are_written_back(dsn: str) -> None:
    task = Task(id="q1", domain="search", instruction="?", answer="y", evidence=["doc:1"])
    with KnowledgeActionGraph(dsn) as kag:
        kag.record_task(task, TaskStatus.REJECTED, "shortcut: solved without tools")
        kag.record_task(task, TaskStatus.ACCEPTED)
        failed = make_trajectory().model_copy(
            update={
                "id": "t-bad",
                "task_id": "q1",
                "status": Status.FAILED,
                "verdicts": [Verdict(verifier="exact_match", passed=False)],
            }
        )
        kag.record_trajectory(make_trajectory().model_copy(update={"task_id": "q1"}), "solver")
        kag.record_trajectory(failed, "solver")
        assert kag.evidence_consulted("t1") == {"doc:1"}
        (record,) = kag.actions("t1")
        assert record.action["function"]["name"] == "search" and record.observation == "obs"
        ((stored, status, reason),) = kag.tasks("search", TaskStatus.ACCEPTED)
        assert stored == task and status == "accepted" and reason is None
        assert kag.tasks("search", TaskStatus.REJECTED) == []
        stats = kag.stats()
        assert kag.db.execute("SELECT attempts FROM tasks") == [(2,)]
    assert stats["tasks"][("search", "accepted")] == 1
    assert stats["trajectories"][("search", "solver", "FAILED")] == 1
    assert stats["edges"][("search", "support")] == 2
    assert stats["nodes"][("search", "task")] == 1


def test_rejections_are_queryable_by_reason(dsn: str) -> None:
    with KnowledgeActionGraph(dsn) as kag:
        for i, reason in enumerate(
            ["shortcut: no-tool attempt passed", "uncovered: doc:3", "shortcut: x"]
        ):
            kag.record_task(
                Task(id=f"q{i}", domain="search", instruction="?"), TaskStatus.REJECTED, reason
            )
        assert [t.id for t, _, _ in kag.tasks("search", TaskStatus.REJECTED, "shortcut")] == [
            "q0",
            "q2",
        ]
        assert kag.stats()["rejections"][("search", "uncovered: doc:3")] == 1


# Each writer creates the schema itself (all at once), then writes its own nodes and edges,
# the same shared ones as every other writer, and the same task again and again.
WRITER = textwrap.dedent(
    """
    import sys
    from longhorizon.core import Task
    from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType, TaskStatus
    dsn, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with KnowledgeActionGraph(dsn) as kag:
        for i in range(n):
            own, shared = f"{me}-{i}", f"shared-{i}"
            kag.add_nodes([Node(id=own, domain="d", type=NodeType.FACT),
                           Node(id=shared, domain="d", type=NodeType.FACT, label=me)])
            kag.add_edges([Edge(src=own, dst=shared, type=EdgeType.LINK, domain="d"),
                           Edge(src=shared, dst=f"shared-{(i + 1) % n}", type=EdgeType.LINK,
                                domain="d", payload={"by": me})])
            task = Task(id="q", domain="d", instruction="?", evidence=[shared])
            kag.record_task(task, TaskStatus.PROPOSED)
    """
)


def test_several_processes_write_at_once(dsn: str) -> None:
    writers, n = 4, 40
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, dsn, f"w{k}", str(n)])
        for k in range(writers)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    with KnowledgeActionGraph(dsn) as kag:
        stats = kag.stats()
        assert kag.db.execute("SELECT attempts FROM tasks") == [(writers * n,)]  # none lost
        (distinct,) = kag.db.execute("SELECT COUNT(DISTINCT id) FROM nodes")
    assert stats["nodes"] == {("d", "fact"): writers * n + n, ("d", "task"): 1}
    assert stats["edges"] == {("d", "link"): writers * n + n, ("d", "dependency"): n}
    assert distinct == (writers * n + n + 1,)


DOOMED = textwrap.dedent(
    """
    import sys, time
    from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
    kag = KnowledgeActionGraph(sys.argv[1])
    with kag.transaction():
        kag.add_nodes(Node(id=f"doomed-{i}", domain="d", type=NodeType.FACT) for i in range(50))
        kag.add_edges([Edge(src="p0", dst="doomed-0", type=EdgeType.LINK, domain="search")])
        kag.add_nodes([Node(id="p0", domain="search", type=NodeType.EVIDENCE, label="doomed")])
        print("inside", flush=True)
        time.sleep(600)
    """
)


def test_a_writer_killed_mid_transaction_leaves_nothing(dsn: str) -> None:
    with KnowledgeActionGraph(dsn) as kag:
        line_graph(kag)
        before = kag.stats()
        writer = subprocess.Popen([sys.executable, "-c", DOOMED, dsn], stdout=subprocess.PIPE)
        try:
            assert writer.stdout is not None and writer.stdout.readline() == b"inside\n"
            assert kag.node("doomed-0") is None  # not visible while open either
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
    with KnowledgeActionGraph(dsn) as kag:  # a fresh connection, as the next worker would
        assert kag.stats() == before
        assert kag.node("p0").label == "Page 0" and kag.neighbours("p0") == ["p1"]
        # the dead writer's locks are gone: its rows can be written, in a transaction too
        with kag.transaction():
            kag.add_nodes([Node(id="p0", domain="search", type=NodeType.EVIDENCE, label="new")])
            kag.add_nodes([Node(id="doomed-0", domain="d", type=NodeType.FACT)])
        assert kag.node("p0").label == "new" and kag.node("doomed-0") is not None


def test_an_exception_rolls_the_transaction_back(dsn: str) -> None:
    with KnowledgeActionGraph(dsn) as kag:
        with pytest.raises(RuntimeError), kag.transaction():
            line_graph(kag)
            raise RuntimeError("abandon")
        assert kag.stats()["nodes"] == {}
        line_graph(kag)
        assert len(kag.nodes("search")) == 6


def test_kag_stats_cli(dsn: str, tmp_path: Path) -> None:
    with KnowledgeActionGraph(dsn) as kag:
        line_graph(kag)
    result = CliRunner().invoke(app, ["kag", "stats", dsn])
    assert result.exit_code == 0, result.output
    assert "evidence" in result.output and "link" in result.output
    # a long path would break the boxed message at 80 columns; conftest widens the terminal
    nope = tmp_path / ("long-folder-name-" * 4) / "nope.db"
    missing = CliRunner().invoke(app, ["kag", "stats", str(nope)])
    assert missing.exit_code == 2 and f"{nope} does not exist" in missing.output


def test_synth_into_postgresql_writes_the_graph_sqlite_gets(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """`longhorizon synth --kag postgresql://...`: the same graph as the default kag.db."""
    args = ["synth", "--domain", "search", "--n", "3", "--concurrency", "1"]
    args += ["--level", '{"entities": 300}']
    dsn = postgres.database()
    for out, kag in [(tmp_path / "sqlite", []), (tmp_path / "pg", ["--kag", dsn])]:
        result = CliRunner().invoke(app, [*args, "--out", str(out), *kag])
        assert result.exit_code == 0, result.output
    assert not (tmp_path / "pg" / "kag.db").exists()
    assert json.loads((tmp_path / "pg" / "synth_report.json").read_text())["accepted"] == 3
    with (
        KnowledgeActionGraph(tmp_path / "sqlite" / "kag.db") as lite,
        KnowledgeActionGraph(dsn) as pg,
    ):
        on_sqlite, on_pg = lite.stats(), pg.stats()
        tasks = [[(t.id, t.answer, s, r) for t, s, r in kag.tasks("search")] for kag in (lite, pg)]
    assert tasks[0] == tasks[1]  # the same tasks, statuses, reasons (only created_at differs)
    assert on_pg["nodes"][("search", "evidence")] > 0 and on_pg["edges"][("search", "link")] > 0
    assert on_pg["nodes"] == on_sqlite["nodes"] and on_pg["edges"] == on_sqlite["edges"]
    assert on_pg == on_sqlite  # tasks, rejections, actions, step verdicts, trajectories too
    # every action has its v_t; the scripted expert's searches and visits are useful steps
    verdicts = on_pg["step verdicts"]
    assert verdicts[("search", "passed")] > 0 and ("search", "none") not in verdicts
    assert sum(verdicts.values()) == on_pg["actions"][("search", "action")]
