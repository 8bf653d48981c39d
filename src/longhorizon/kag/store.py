"""The knowledge-action graph store: corpus nodes, tasks, action records, typed edges.

Every solver and verifier step is written back (failed trajectories included: negative
evidence). SQLite in WAL mode serves several worker processes on one machine; a PostgreSQL
DSN serves synthesis across machines with the same schema. Each write method is one
transaction; `transaction()` groups several.

Results come back in the same order from both: rows are sorted here, in Python (code point
order, which is SQLite's BINARY collation), never by the server, whose text collation
depends on the locale a PostgreSQL cluster was created with.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory
from longhorizon.kag.dialect import connect
from longhorizon.kag.types import ActionRecord, Edge, EdgeType, Node, NodeType, TaskStatus


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class KnowledgeActionGraph:
    """One graph G = union of per-domain sub-graphs G_d, in one database."""

    def __init__(self, dsn: str | Path) -> None:
        self.dsn = str(dsn)
        self.db = connect(dsn)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> KnowledgeActionGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Writes inside the block commit together, or none do (an exception, a killed process)."""
        with self.db.transaction():
            yield

    # ---- corpus and structure -----------------------------------------------------------
    def add_nodes(self, nodes: Iterable[Node]) -> None:
        # sorted by key: concurrent writers lock rows in one order, so none deadlock
        rows = sorted((n.id, n.domain, n.type.value, n.label, _dumps(n.payload)) for n in nodes)
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO nodes (id, domain, type, label, payload) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET label = excluded.label, payload = excluded.payload",
                rows,
            )

    def add_edges(self, edges: Iterable[Edge]) -> None:
        rows = sorted((e.src, e.dst, e.type.value, e.domain, _dumps(e.payload)) for e in edges)
        with self.db.transaction():
            self.db.executemany(
                "INSERT INTO edges (src, dst, type, domain, payload) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (src, dst, type) DO UPDATE SET payload = excluded.payload",
                rows,
            )

    def node(self, node_id: str) -> Node | None:
        rows = self.db.execute(
            "SELECT id, domain, type, label, payload FROM nodes WHERE id = ?", (node_id,)
        )
        return _node(rows[0]) if rows else None

    def nodes(self, domain: str, type_: NodeType | None = None) -> list[Node]:
        if type_ is None:
            rows = self.db.execute(
                "SELECT id, domain, type, label, payload FROM nodes WHERE domain = ?", (domain,)
            )
        else:
            rows = self.db.execute(
                "SELECT id, domain, type, label, payload FROM nodes WHERE domain = ? AND type = ?",
                (domain, type_.value),
            )
        return [_node(r) for r in sorted(rows)]

    def edges(self, domain: str, type_: EdgeType | None = None) -> list[Edge]:
        query = "SELECT src, dst, type, domain, payload FROM edges WHERE domain = ?"
        params: tuple[str, ...] = (domain,)
        if type_ is not None:
            query, params = query + " AND type = ?", (domain, type_.value)
        return [_edge(r) for r in sorted(self.db.execute(query, params))]

    def neighbours(self, node_id: str, type_: EdgeType = EdgeType.LINK) -> list[str]:
        rows = self.db.execute(
            "SELECT dst FROM edges WHERE src = ? AND type = ?", (node_id, type_.value)
        )
        return sorted(r[0] for r in rows)

    def random_walk(
        self,
        start: str,
        rng: random.Random,
        length: int,
        *,
        edge_type: EdgeType = EdgeType.LINK,
        allow: Callable[[str, list[str]], bool] | None = None,
    ) -> list[str]:
        """A walk of up to `length` hops that never revisits a node.

        `allow(candidate, path)` adds the caller's constraints (near-duplicate titles, minimum
        out-degree, staying inside a region); the walk stops early when no neighbour is allowed.
        """
        path = [start]
        for _ in range(length):
            options = [
                n
                for n in self.neighbours(path[-1], edge_type)
                if n not in path and (allow is None or allow(n, path))
            ]
            if not options:
                break
            path.append(rng.choice(options))
        return path

    # ---- self-play write-back ------------------------------------------------------------
    def record_task(self, task: Task, status: TaskStatus, reason: str | None = None) -> None:
        with self.db.transaction():
            self._record_task(task, status, reason)

    def _record_task(self, task: Task, status: TaskStatus, reason: str | None) -> None:
        self.db.execute(
            "INSERT INTO tasks (id, domain, status, reason, attempts, payload) "
            "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
            "reason = excluded.reason, attempts = tasks.attempts + 1, payload = excluded.payload",
            (task.id, task.domain, status.value, reason, task.model_dump_json()),
        )
        self.add_nodes([Node(id=task.id, domain=task.domain, type=NodeType.TASK)])
        deps = [
            Edge(src=task.id, dst=ref, type=EdgeType.DEPENDENCY, domain=task.domain)
            for ref in task.evidence
        ]
        self.add_edges(deps)

    def record_trajectory(self, traj: Trajectory, role: str) -> None:
        """Write the trajectory's action records, their transitions, support and verdicts."""
        with self.db.transaction():
            self._record_trajectory(traj, role)

    def _record_trajectory(self, traj: Trajectory, role: str) -> None:
        self.db.execute(
            "INSERT INTO trajectories (id, task_id, domain, role, status, passed, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "status = excluded.status, passed = excluded.passed, payload = excluded.payload",
            (
                traj.id,
                traj.task_id,
                traj.domain,
                role,
                traj.status.value,
                int(traj.passed),
                _dumps(
                    {
                        "final_answer": traj.final_answer,
                        "status_reason": traj.status_reason,
                        "verdicts": [v.model_dump() for v in traj.verdicts],
                        "usage": traj.usage.model_dump(),
                    }
                ),
            ),
        )
        records = list(action_records(traj))
        self.db.executemany(
            "INSERT INTO actions (id, trajectory_id, task_id, domain, step, state_refs, action, "
            "observation, verdict, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO NOTHING",
            [
                (
                    r.id,
                    r.trajectory_id,
                    r.task_id,
                    r.domain,
                    r.step,
                    _dumps(r.state_refs),
                    _dumps(r.action),
                    r.observation,
                    _dumps(r.verdict) if r.verdict else None,
                    r.error,
                )
                for r in records
            ],
        )
        self.add_edges(_trajectory_edges(traj, records))

    # ---- queries ------------------------------------------------------------------------
    def evidence_consulted(self, trajectory_id: str) -> set[str]:
        rows = self.db.execute(
            "SELECT state_refs FROM actions WHERE trajectory_id = ?", (trajectory_id,)
        )
        return {ref for (refs,) in rows for ref in json.loads(refs)}

    def actions(self, trajectory_id: str) -> list[ActionRecord]:
        rows = self.db.execute(
            "SELECT id, trajectory_id, task_id, domain, step, state_refs, action, observation, "
            "verdict, error FROM actions WHERE trajectory_id = ? ORDER BY step",
            (trajectory_id,),
        )
        return [_action(r) for r in rows]

    def tasks(
        self, domain: str, status: TaskStatus | None = None, reason: str | None = None
    ) -> list[tuple[Task, str, str | None]]:
        """Tasks of a domain (optionally by status and rejection reason prefix)."""
        sql = "SELECT id, payload, status, reason FROM tasks WHERE domain = ?"
        params: list[Any] = [domain]
        if status is not None:
            sql += " AND status = ?"
            params.append(status.value)
        if reason is not None:
            sql += " AND reason LIKE ?"
            params.append(f"{reason}%")
        rows = sorted(self.db.execute(sql, tuple(params)))
        return [(Task.model_validate_json(p), s, r) for _, p, s, r in rows]

    def stats(self) -> dict[str, Counter[tuple[str, ...]]]:
        """Counts of nodes, edges, tasks (by status and reason), actions and trajectories."""
        queries = {
            "nodes": "SELECT domain, type, COUNT(*) FROM nodes GROUP BY domain, type",
            "edges": "SELECT domain, type, COUNT(*) FROM edges GROUP BY domain, type",
            "tasks": "SELECT domain, status, COUNT(*) FROM tasks GROUP BY domain, status",
            "rejections": "SELECT domain, reason, COUNT(*) FROM tasks WHERE status = 'rejected' "
            "GROUP BY domain, reason",
            "actions": "SELECT domain, 'action', COUNT(*) FROM actions GROUP BY domain",
            # v_t of each action: passed, failed, or none (recorded before steps had one)
            "step verdicts": "SELECT domain, CASE WHEN verdict IS NULL THEN 'none' "
            "WHEN verdict LIKE ? THEN 'passed' ELSE 'failed' END AS v, "
            "COUNT(*) FROM actions GROUP BY domain, v",
            "trajectories": "SELECT domain, role, status, COUNT(*) FROM trajectories "
            "GROUP BY domain, role, status",
        }
        out: dict[str, Counter[tuple[str, ...]]] = {}
        params = {"step verdicts": ('%"passed": true%',)}  # a parameter: psycopg reads % itself
        for name, sql in queries.items():
            rows = self.db.execute(sql, params.get(name, ()))
            out[name] = Counter({tuple(str(v) for v in row[:-1]): row[-1] for row in rows})
        return out


def action_records(traj: Trajectory) -> Iterable[ActionRecord]:
    for step in traj.steps:
        yield ActionRecord(
            id=f"{traj.id}/a{step.index}",
            trajectory_id=traj.id,
            task_id=traj.task_id,
            domain=traj.domain,
            step=step.index,
            state_refs=step.state_refs,
            action=step.action.model_dump(),
            observation=step.observation,
            verdict=step.verdict.model_dump() if step.verdict else None,
            error=step.error,
        )


def _trajectory_edges(traj: Trajectory, records: list[ActionRecord]) -> list[Edge]:
    edges = [
        Edge(src=a.id, dst=b.id, type=EdgeType.ACTION_TRANSITION, domain=traj.domain)
        for a, b in pairwise(records)
    ]
    edges += [
        Edge(src=ref, dst=r.id, type=EdgeType.SUPPORT, domain=traj.domain)
        for r in records
        for ref in r.state_refs
    ]
    edges += [
        Edge(
            src=traj.task_id,
            dst=traj.id,
            type=EdgeType.VERIFICATION,
            domain=traj.domain,
            payload={"verifier": v.verifier, "passed": v.passed},
        )
        for v in traj.verdicts[:1]
    ]
    return edges


def _node(row: tuple[Any, ...]) -> Node:
    return Node(
        id=row[0], domain=row[1], type=NodeType(row[2]), label=row[3], payload=json.loads(row[4])
    )


def _edge(row: tuple[Any, ...]) -> Edge:
    return Edge(
        src=row[0], dst=row[1], type=EdgeType(row[2]), domain=row[3], payload=json.loads(row[4])
    )


def _action(row: tuple[Any, ...]) -> ActionRecord:
    return ActionRecord(
        id=row[0],
        trajectory_id=row[1],
        task_id=row[2],
        domain=row[3],
        step=row[4],
        state_refs=json.loads(row[5]),
        action=json.loads(row[6]),
        observation=row[7],
        verdict=json.loads(row[8]) if row[8] else None,
        error=row[9],
    )
