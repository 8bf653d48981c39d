"""Tool-calling tasks: a target from the graph, a plan by backward search, a concrete user and
object from the seeded world, a persona holding the private details, and the goal state got
by running the plan (the reference solution) in a fresh sandbox.

Screening runs the same plan and rejects a task that is
- `underspecified`: the user's words select more than one object, or the persona lacks a detail;
- `unreachable`: the target call's precondition does not hold in the initial state;
- `not_executable`: an earlier call fails, or the selection finds nothing;
- `unverifiable`: the goal changes no state and asks for no fact (nothing for the verifier).
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.domains.tool.graph import DOMAIN, OUTCOME, RUBRICS, SIGNATURES, TARGETS, plan
from longhorizon.domains.tool.level import ToolLevel
from longhorizon.tools.worlds import (
    CANCEL_REASONS,
    POLICIES,
    STREETS,
    WORLD_TOOLS,
    PreconditionError,
    Session,
)

GENERATOR = "longhorizon.domains.tool.propose_task"
SYSTEM_PROMPT = (
    "You are a customer-service agent for a {world} service. Act only through the tools; the "
    "user speaks to you only through ask_user. When you are done, reply to the user inside "
    "<answer></answer>: what you did, and every fact they asked for.\n\n{policy}"
)
MAX_TURNS = 24


class ScreenError(Exception):
    """A task screening rejects: `rule` is the rejection rule, the message says why."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail)
        self.rule = rule


def protocol(world: str) -> Protocol:
    prompt = SYSTEM_PROMPT.format(world=world, policy=POLICIES[world])
    return Protocol(
        tools=WORLD_TOOLS[world], budgets=Budgets(max_turns=MAX_TURNS), system_prompt=prompt
    )


# ---- running a plan (the reference solution, and screening) -----------------------------------


def _select(rows: list[dict[str, Any]], rule: dict[str, Any], tool: str) -> dict[str, Any]:
    if rule.get("cheapest"):
        open_rows = [r for r in rows if r["seats"] > 0]
        low = min((r["price"] for r in open_rows), default=None)
        found = [r for r in open_rows if r["price"] == low]
    else:
        found = [r for r in rows if all(r.get(k) == v for k, v in rule.items())]
    if not found:
        raise ScreenError("not_executable", f"{tool}: no row matches {rule}")
    if len(found) > 1:
        raise ScreenError("underspecified", f"{tool}: {len(found)} rows match {rule}")
    return found[0]


def run_plan(meta: dict[str, Any]) -> tuple[Session, list[Any]]:
    """Execute the task's plan in a fresh world; the session and each step's (selected) output.
    Raises ScreenError with the rule a failure breaks."""
    session = Session.open(meta["world"], meta["world_seed"])
    details: dict[str, Any] = meta["persona"]["details"]
    outputs: list[Any] = []
    for i, step in enumerate(meta["plan"]):
        args = {}
        for arg, source in step["args"].items():
            if "user" in source:
                if source["user"] not in details:
                    raise ScreenError("underspecified", f"the user does not know {arg}")
                args[arg] = details[source["user"]]
            elif "public" in source:
                args[arg] = meta["public"][source["public"]]
            else:
                args[arg] = outputs[source["step"]][source["field"]]
        final = i == len(meta["plan"]) - 1 and SIGNATURES[step["tool"]].leaves is not None
        try:
            value = session.call(step["tool"], args)
        except PreconditionError as exc:
            raise ScreenError("unreachable" if final else "not_executable", str(exc)) from None
        if isinstance(value, list):
            value = _select(value, meta["select"].get(step["tool"], {}), step["tool"])
        outputs.append(value)
    return session, outputs


def screen(task: Task) -> str | None:
    """The screening rejection reason ("rule: detail"), or None when the task is sound."""
    meta = task.metadata
    try:
        session, outputs = run_plan(meta)
    except ScreenError as exc:
        return f"{exc.rule}: {exc}"
    initial = Session.open(meta["world"], meta["world_seed"]).snapshot()
    facts = _facts(meta, outputs)
    if session.snapshot() == initial and not facts:
        return "unverifiable: the goal changes no state and asks for no fact"
    return None


def _facts(meta: dict[str, Any], outputs: list[Any]) -> list[str]:
    answer = meta.get("answer_field")
    return [str(outputs[-1][answer])] if answer else []


# ---- drawing a task ---------------------------------------------------------------------------


def _instantiate(world: str, target: str, session: Session, rng: random.Random) -> dict[str, Any]:
    """The concrete user, object, persona details, public words and selections."""
    users = session.rows("SELECT * FROM users ORDER BY user_id")
    if world == "retail":
        order = rng.choice(session.rows("SELECT * FROM orders ORDER BY order_id"))
        user = next(u for u in users if u["user_id"] == order["user_id"])
        details = {"email": user["email"], "order_id": order["order_id"]}
        if target == "cancel_order":
            details["reason"] = rng.choice(CANCEL_REASONS)
        if target == "update_address":
            details["address"] = rng.choice(STREETS)
        confirm = order["order_id"]
        return _meta(
            user,
            details,
            {"item": order["item"]},
            {"list_orders": {"item": order["item"]}},
            confirm,
        )
    if target in ("cancel_booking", "get_booking"):
        sql = "SELECT b.*, f.destination, f.date FROM bookings b JOIN flights f USING (flight_id)"
        booking = rng.choice(session.rows(sql + " ORDER BY booking_id"))
        user = next(u for u in users if u["user_id"] == booking["user_id"])
        where = {"destination": booking["destination"], "date": booking["date"]}
        details = {"email": user["email"], "booking_id": booking["booking_id"]}
        return _meta(user, details, where, {"list_bookings": where}, booking["booking_id"])
    flight = rng.choice(session.rows("SELECT * FROM flights ORDER BY flight_id"))
    user = rng.choice(users)
    details = {"email": user["email"], "origin": flight["origin"], "date": flight["date"]}
    same = session.find_flights(flight["origin"], flight["destination"], flight["date"])
    open_rows = sorted((r["price"], r["flight_id"]) for r in same if r["seats"] > 0)
    confirm = open_rows[0][1] if open_rows else ""
    public = {"destination": flight["destination"]}
    return _meta(user, details, public, {"find_flights": {"cheapest": True}}, confirm)


def _meta(
    user: dict[str, Any],
    details: dict[str, Any],
    public: dict[str, Any],
    select: dict[str, Any],
    confirm: str,
) -> dict[str, Any]:
    return {
        "user_id": user["user_id"],
        "persona": {"name": user["name"], "details": details, "confirm_id": confirm},
        "public": public,
        "select": select,
    }


def render(meta: dict[str, Any]) -> str:
    """The user's first message: the goal in their words, without the private details."""
    target, public = meta["target"], meta["public"]
    name = meta["persona"]["name"].split()[0]
    text = {
        "cancel_order": f"I'd like to cancel my {public.get('item')} order.",
        "update_address": f"I moved: please change the shipping address of my "
        f"{public.get('item')} order.",
        "get_order": f"What is the status of my {public.get('item')} order?",
        "book_flight": f"Please book me the cheapest flight to {public.get('destination')} "
        "that still has seats, and tell me the booking id.",
        "cancel_booking": f"Please cancel my booking to {public.get('destination')} on "
        f"{public.get('date')}.",
        "get_booking": f"What is the status of my booking to {public.get('destination')} on "
        f"{public.get('date')}?",
    }[target]
    held = any(
        "user" in s and s["user"] in ("order_id", "booking_id")
        for step in meta["plan"]
        for s in step["args"].values()
    )
    extra = " I have my reference number if you need it." if held else ""
    return f"Hi, this is {name}. {text}{extra}"


def propose_task(
    level: ToolLevel, rng: random.Random, *, world_seed: int, seed: int | None = None
) -> Task:
    """One candidate (screening decides whether it is sound): a target anchored in the graph,
    its plan, a concrete object, the persona and, when the plan runs, the goal state."""
    world = rng.choices(("retail", "travel"), weights=level.world_weights)[0]
    target, answer_field = rng.choice(TARGETS[world])
    steps = plan(world, target, rng, level.p_user_id)
    session = Session.open(world, world_seed)
    meta = {
        "world": world,
        "world_seed": world_seed,
        "target": target,
        "answer_field": answer_field,
        "plan": steps,
        **_instantiate(world, target, session, rng),
    }
    asked = {s["user"] for st in steps for s in st["args"].values() if "user" in s}
    details = meta["persona"]["details"]
    meta["persona"]["details"] = {k: v for k, v in details.items() if k in asked}
    try:
        done, outputs = run_plan(meta)
        meta |= {"goal": done.snapshot(), "facts": _facts(meta, outputs)}
    except ScreenError:
        meta |= {"goal": None, "facts": []}
    return _task(meta, seed)


def _task(meta: dict[str, Any], seed: int | None) -> Task:
    instruction = render(meta)
    key = json.dumps([meta["world"], meta["world_seed"], meta["plan"], meta["persona"]])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    target_id = meta["persona"]["confirm_id"]
    return Task(
        id=f"tool-{meta['world']}-{digest}",
        domain=DOMAIN,
        instruction=instruction,
        answer="\n".join(meta["facts"]) or None,
        evidence=[f"user_id:{meta['user_id']}"]
        + ([f"{_ref(meta)}:{target_id}"] if target_id else []),
        verifiers=[VerifierSpec(name=v) for v in (OUTCOME, *RUBRICS)],
        protocol=protocol(meta["world"]),
        provenance=Provenance(source="synthetic", generator=GENERATOR, seed=seed),
        metadata=meta,
    )


def _ref(meta: dict[str, Any]) -> str:
    """The id kind of the task's target object (its evidence ref)."""
    if meta["target"] in ("cancel_booking", "get_booking"):
        return "booking_id"
    return "order_id" if meta["world"] == "retail" else "flight_id"
