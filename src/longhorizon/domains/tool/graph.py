"""The tool-interaction graph: tools, the value types they take and return, the resources and
states they read and change, and the verifier targets; plus the backward search that turns a
target (a state change or an answer) into a dependent plan of calls.

Edges in the KAG: schema compatibility (a tool's output type is another's input type),
precondition -> effect (a state a tool needs -> the tool -> the state it leaves), shared
resources (tools on the same table) and verifier targets (a verifier -> the states and
answer fields it checks).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.worlds import DESTRUCTIVE, WORLD_TOOLS

DOMAIN = "tool"
OUTCOME = "tool_outcome"
RUBRICS = ("tool_schema", "tool_grounded", "tool_policy", "tool_confirmed")
# value types the simulated user can hold (revealed when asked); the rest come from tools
USER_TYPES = frozenset({"email", "order_id", "booking_id", "address", "reason", "origin", "date"})


@dataclass(frozen=True)
class Signature:
    """A tool as the graph sees it: argument -> value type, output field -> value type, the
    resource it touches, the states it needs and the state it leaves (None: read-only)."""

    inputs: dict[str, str]
    outputs: dict[str, str] = field(default_factory=dict)
    resource: str = ""
    needs: tuple[str, ...] = ()
    leaves: str | None = None
    lists: bool = False  # returns several rows: a later call selects one


SIGNATURES: dict[str, Signature] = {
    "find_user": Signature({"email": "email"}, {"user_id": "user_id"}, "user"),
    "list_orders": Signature({"user_id": "user_id"}, {"order_id": "order_id"}, "order", lists=True),
    "get_order": Signature(
        {"order_id": "order_id"}, {"status": "order_status", "address": "address"}, "order"
    ),
    "cancel_order": Signature(
        {"order_id": "order_id", "reason": "reason"},
        resource="order",
        needs=("pending", "processing"),
        leaves="cancelled",
    ),
    "update_address": Signature(
        {"order_id": "order_id", "address": "address"},
        resource="order",
        needs=("pending",),
        leaves="pending",
    ),
    "find_flights": Signature(
        {"origin": "origin", "destination": "destination", "date": "date"},
        {"flight_id": "flight_id", "price": "flight_price"},
        "flight",
        lists=True,
    ),
    "list_bookings": Signature(
        {"user_id": "user_id"}, {"booking_id": "booking_id"}, "booking", lists=True
    ),
    "get_booking": Signature({"booking_id": "booking_id"}, {"status": "booking_status"}, "booking"),
    "book_flight": Signature(
        {"user_id": "user_id", "flight_id": "flight_id"},
        {"booking_id": "booking_id"},
        "booking",
        needs=("seats_left",),
        leaves="booked",
    ),
    "cancel_booking": Signature(
        {"booking_id": "booking_id"}, resource="booking", needs=("booked",), leaves="cancelled"
    ),
}
# the read tool that checks a resource's state before a destructive call
CHECKS = {"order": "get_order"}
# (target tool, answer field or None): the anchors of task search, per world
TARGETS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "retail": (
        ("cancel_order", None),
        ("update_address", None),
        ("get_order", "status"),
    ),
    "travel": (
        ("book_flight", "booking_id"),
        ("cancel_booking", None),
        ("get_booking", "status"),
    ),
}
# value types written into the user's first message (public), not held back by the persona
PUBLIC_TYPES = frozenset({"destination"})


def plan(world: str, target: str, rng: random.Random, p_user: float) -> list[dict[str, Any]]:
    """A dependent plan ending in `target`: for each input, the user (when they can hold the
    type, with probability `p_user` if a tool could produce it too) or a producing tool,
    searched backwards; find_user first (the policy's authentication). Each step is
    {"tool", "args": {arg: source}}, a source being {"user": type}, {"public": type} or
    {"step": i, "field": f}."""
    steps: list[dict[str, Any]] = [{"tool": "find_user", "args": {"email": {"user": "email"}}}]
    produced: dict[str, dict[str, Any]] = {"user_id": {"step": 0, "field": "user_id"}}

    def need(kind: str) -> dict[str, Any]:
        if kind in produced:
            return produced[kind]
        if kind in PUBLIC_TYPES:
            produced[kind] = {"public": kind}
            return produced[kind]
        makers = [t for t in WORLD_TOOLS[world] if t in SIGNATURES and SIGNATURES[t].lists]
        makers = [t for t in makers if kind in SIGNATURES[t].outputs.values()]
        if kind in USER_TYPES and (not makers or rng.random() < p_user):
            produced[kind] = {"user": kind}  # asked once, reused by later calls
            return produced[kind]
        add(rng.choice(makers))
        return produced[kind]

    def add(name: str) -> None:
        sig = SIGNATURES[name]
        steps.append({"tool": name, "args": {arg: need(k) for arg, k in sig.inputs.items()}})
        for out_field, kind in sig.outputs.items():
            if kind.endswith("_id"):  # ids flow into later calls; other fields are answers
                produced.setdefault(kind, {"step": len(steps) - 1, "field": out_field})

    sig = SIGNATURES[target]
    check = CHECKS.get(sig.resource) if sig.leaves is not None else None
    if check is not None:  # read the state the precondition is about before changing it
        add(check)
    add(target)
    return steps


_NONE = Signature({})


# ---- the KAG -----------------------------------------------------------------------------------


def _node(node_id: str, kind: NodeType, **payload: Any) -> Node:
    return Node(id=node_id, domain=DOMAIN, type=kind, label=node_id, payload=payload)


def _edge(src: str, dst: str, kind: EdgeType, relation: str) -> Edge:
    return Edge(src=src, dst=dst, type=kind, domain=DOMAIN, payload={"relation": relation})


def kag_nodes() -> Iterator[Node]:
    types = {k for s in SIGNATURES.values() for k in [*s.inputs.values(), *s.outputs.values()]}
    for name in SIGNATURES:
        worlds = [w for w, tools in WORLD_TOOLS.items() if name in tools]
        yield _node(f"tool:{name}", NodeType.TOOL, worlds=worlds, destructive=name in DESTRUCTIVE)
    yield _node("tool:ask_user", NodeType.TOOL, worlds=sorted(WORLD_TOOLS), destructive=False)
    yield from (_node(f"type:{t}", NodeType.FACT, user_held=t in USER_TYPES) for t in types)
    for resource, states in _states().items():
        yield _node(f"resource:{resource}", NodeType.ENTITY)
        yield from (_node(f"state:{resource}.{s}", NodeType.STATE) for s in states)
    yield from (_node(f"verifier:{v}", NodeType.CONSTRAINT) for v in (OUTCOME, *RUBRICS))


def _states() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for sig in SIGNATURES.values():
        states = out.setdefault(sig.resource, set())
        states.update(sig.needs)
        states.update([sig.leaves] if sig.leaves else [])
    return out


def kag_edges() -> Iterator[Edge]:
    for a, sa in SIGNATURES.items():
        yield _edge(f"tool:{a}", f"resource:{sa.resource}", EdgeType.LINK, "shared_resource")
        yield from (
            _edge(f"tool:{a}", f"type:{k}", EdgeType.PRODUCTION, "observation_field")
            for k in sa.outputs.values()
        )
        yield from (
            _edge(f"tool:{a}", f"type:{k}", EdgeType.DEPENDENCY, "argument")
            for k in sa.inputs.values()
        )
        for b, sb in SIGNATURES.items():
            shared = set(sa.outputs.values()) & set(sb.inputs.values())
            if a != b and shared:
                yield _edge(f"tool:{a}", f"tool:{b}", EdgeType.LINK, "schema_compatible")
        for state in sa.needs:
            yield _edge(
                f"state:{sa.resource}.{state}", f"tool:{a}", EdgeType.DEPENDENCY, "precondition"
            )
        if sa.leaves:
            leaves = f"state:{sa.resource}.{sa.leaves}"
            yield _edge(f"tool:{a}", leaves, EdgeType.ACTION_TRANSITION, "effect")
            yield _edge(f"verifier:{OUTCOME}", leaves, EdgeType.VERIFICATION, "goal_state")
    for world in TARGETS.values():
        for name, answer in world:
            if answer is not None:
                kind = SIGNATURES[name].outputs[answer]
                yield _edge(f"verifier:{OUTCOME}", f"type:{kind}", EdgeType.VERIFICATION, "told")


def load_into_kag(kag: KnowledgeActionGraph) -> None:
    """The tool-interaction graph of both worlds (the same for every world seed)."""
    kag.add_nodes(kag_nodes())
    kag.add_edges(kag_edges())
