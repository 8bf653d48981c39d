"""The knowledge-action graph (KAG): corpus, actions, observations and verdicts per domain."""

from longhorizon.kag.store import KnowledgeActionGraph, action_records
from longhorizon.kag.types import ActionRecord, Edge, EdgeType, Node, NodeType, TaskStatus

__all__ = [
    "ActionRecord",
    "Edge",
    "EdgeType",
    "KnowledgeActionGraph",
    "Node",
    "NodeType",
    "TaskStatus",
    "action_records",
]
