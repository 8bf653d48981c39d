"""The knowledge-action graph's vocabulary: typed nodes, typed edges, action records."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class NodeType(StrEnum):
    EVIDENCE = "evidence"  # a chunk of the corpus C_d (a page, a passage)
    ENTITY = "entity"
    FACT = "fact"
    CONSTRAINT = "constraint"
    TOOL = "tool"
    STATE = "state"
    ARTIFACT = "artifact"
    TASK = "task"


class EdgeType(StrEnum):
    SUPPORT = "support"  # evidence supports a fact / an answer / an action's observation
    DEPENDENCY = "dependency"  # a task or fact depends on another node
    PRODUCTION = "production"  # an action produced an artifact or observation
    VERIFICATION = "verification"  # a verifier checked a node
    ACTION_TRANSITION = "action_transition"  # action record t -> t+1
    LINK = "link"  # a hyperlink or relation between corpus nodes


class TaskStatus(StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Node(BaseModel):
    id: str
    domain: str
    type: NodeType
    label: str = ""
    payload: dict[str, Any] = Field(default_factory=dict)


class Edge(BaseModel):
    src: str
    dst: str
    type: EdgeType
    domain: str
    payload: dict[str, Any] = Field(default_factory=dict)


class ActionRecord(BaseModel):
    """(s_t, a_t, o_t, v_t): state as node references, the action, its observation, a verdict."""

    id: str
    trajectory_id: str
    task_id: str
    domain: str
    step: int
    state_refs: list[str] = Field(default_factory=list)
    action: dict[str, Any]
    observation: str
    verdict: dict[str, Any] | None = None
    error: str | None = None
