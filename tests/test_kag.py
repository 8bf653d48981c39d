"""The knowledge-action graph store on SQLite: write-back, walks, queries, concurrency."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Status, Task, Verdict
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType, TaskStatus
from tests.test_core_types import make_trajectory


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


def test_nodes_edges_and_constrained_walks(tmp_path: Path) -> None:
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        line_graph(kag)
        assert kag.node("p2").label == "Page 2"
        assert kag.neighbours("p3") == ["p0", "p4"]
        walk = kag.random_walk("p0", random.Random(0), 10)
        assert walk == ["p0", "p1", "p2", "p3", "p4", "p5"]  # p3 -> p0 is a revisit
        stop_at_4 = kag.random_walk("p0", random.Random(0), 10, allow=lambda n, path: n != "p4")
        assert stop_at_4 == ["p0", "p1", "p2", "p3"]
        assert [n.id for n in kag.nodes("search", NodeType.EVIDENCE)][:2] == ["p0", "p1"]


def test_tasks_trajectories_and_evidence_are_written_back(tmp_path: Path) -> None:
    task = Task(id="q1", domain="search", instruction="?", answer="y", evidence=["doc:1"])
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
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
    assert stats["tasks"][("search", "accepted")] == 1
    assert stats["trajectories"][("search", "solver", "FAILED")] == 1
    assert stats["edges"][("search", "support")] == 2
    assert stats["nodes"][("search", "task")] == 1
    rows = sqlite3.connect(tmp_path / "kag.db").execute("SELECT attempts FROM tasks").fetchall()
    assert rows == [(2,)]


def test_rejections_are_queryable_by_reason(tmp_path: Path) -> None:
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
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


WORKER = textwrap.dedent(
    """
    import sys
    from longhorizon.kag import KnowledgeActionGraph, Node, NodeType
    kag = KnowledgeActionGraph(sys.argv[1])
    for i in range(200):
        kag.add_nodes([Node(id=f"{sys.argv[2]}-{i}", domain="d", type=NodeType.FACT)])
    """
)


def test_several_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "kag.db"
    KnowledgeActionGraph(db).close()
    root = Path(__file__).resolve().parents[1]
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(db), f"w{k}"], cwd=root)
        for k in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with KnowledgeActionGraph(db) as kag:
        assert kag.stats()["nodes"][("d", "fact")] == 600


def test_kag_stats_cli(tmp_path: Path) -> None:
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        line_graph(kag)
    result = CliRunner().invoke(app, ["kag", "stats", str(tmp_path / "kag.db")])
    assert result.exit_code == 0, result.output
    assert "evidence" in result.output and "link" in result.output
    # a long path would break the boxed message at 80 columns; conftest widens the terminal
    nope = tmp_path / ("long-folder-name-" * 4) / "nope.db"
    missing = CliRunner().invoke(app, ["kag", "stats", str(nope)])
    assert missing.exit_code == 2 and f"{nope} does not exist" in missing.output
