"""The MLE domain in the KAG: competitions as evidence nodes, and each solver episode's
solution tree as artifact nodes (code, status, validation metric, invalidation reason) with
parent edges; failed and invalidated nodes are kept as negative evidence.

The tree is rebuilt from the episode's recorded actions (`tools.mle.replay`), so what the KAG
holds is what the tools did. Node ids are the refs the tools put on their steps
(`<trajectory>#node<k>`), so the action records' support edges reach them.
"""

from __future__ import annotations

from longhorizon.core.task import Task
from longhorizon.domains.mle.tasks import DOMAIN
from longhorizon.kag import ActionRecord, Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.mle import Call, SolutionTree, replay
from longhorizon.tools.mle.harness import competition_ref, node_ref
from longhorizon.tools.mle.tree import parse_arguments

__all__ = ["load_tree", "record_competition", "record_tree", "tree_from_actions"]


def record_competition(kag: KnowledgeActionGraph, task: Task) -> None:
    """The competition a task is about, as an evidence node (what its evidence id names)."""
    comp = task.metadata["competition"]
    kag.add_nodes(
        [
            Node(
                id=competition_ref(comp["id"]),
                domain=DOMAIN,
                type=NodeType.EVIDENCE,
                label=comp["id"],
                payload={**comp, "recipe": task.metadata["recipe"]},
            )
        ]
    )


def tree_from_actions(records: list[ActionRecord]) -> SolutionTree:
    """The solution tree of a recorded episode."""
    calls = []
    for r in records:
        function = r.action.get("function", {})
        try:
            args = parse_arguments(function.get("arguments", "{}"))
        except ValueError:
            args = {}
        calls.append(Call(function.get("name", ""), args, r.observation, r.error))
    return replay(calls)


def record_tree(kag: KnowledgeActionGraph, task: Task, trajectory_id: str) -> SolutionTree:
    """Write the episode's tree (nodes, parent edges, verdicts on nodes) into the KAG."""
    tree = tree_from_actions(kag.actions(trajectory_id))
    comp = competition_ref(task.metadata["competition"]["id"])
    nodes, edges = [], []
    for node in tree.nodes.values():
        ref = node_ref(trajectory_id, node.id)
        payload = {
            "code": node.code,
            "plan": node.plan,
            "status": node.status,
            "metric": node.metric,
            "error": node.error,
            "invalid_reason": node.invalid_reason,
            "parent": node.parent,
            "committed": tree.answer == node.id,
            "trajectory": trajectory_id,
        }
        nodes.append(
            Node(id=ref, domain=DOMAIN, type=NodeType.ARTIFACT, label=node.plan, payload=payload)
        )
        parent = node_ref(trajectory_id, node.parent) if node.parent is not None else comp
        relation = "patch_of" if node.parent is not None else "root_for"
        edges.append(
            Edge(
                src=ref,
                dst=parent,
                type=EdgeType.DEPENDENCY,
                domain=DOMAIN,
                payload={"relation": relation},
            )
        )
        if node.status == "invalidated" or tree.answer == node.id:
            verdict = (
                {"invalidated": node.invalid_reason}
                if node.status == "invalidated"
                else {"committed": True}
            )
            edges.append(
                Edge(
                    src=trajectory_id,
                    dst=ref,
                    type=EdgeType.VERIFICATION,
                    domain=DOMAIN,
                    payload=verdict,
                )
            )
    kag.add_nodes(nodes)
    kag.add_edges(edges)
    return tree


def load_tree(kag: KnowledgeActionGraph, trajectory_id: str) -> SolutionTree:
    """The tree as the KAG holds it (nodes and parent edges), for readers of the graph."""
    tree = SolutionTree()
    prefix = f"{trajectory_id}#node"
    found = [n for n in kag.nodes(DOMAIN, NodeType.ARTIFACT) if n.id.startswith(prefix)]
    for item in sorted(found, key=lambda n: int(n.id[len(prefix) :])):
        p = item.payload
        node = tree.add(p["parent"], p["code"], p["plan"])
        node.status, node.metric, node.error = p["status"], p["metric"], p["error"]
        node.invalid_reason = p["invalid_reason"]
        if p["committed"]:
            tree.answer = node.id
    return tree
