"""The one verifier of the tool-calling domain: an outcome check and four process rubrics.

- `tool_outcome`: replaying the episode's successful calls on a fresh copy of the world gives
  exactly the goal state, and the final answer tells the user every required fact.
- `tool_schema`: every call names a tool of the task and its arguments fit the tool's schema.
- `tool_grounded`: every argument of a successful call appeared earlier in the user's words
  (the instruction, ask_user replies) or in an observation.
- `tool_policy`: the user was authenticated (find_user) before any call about their records,
  and every destructive call was confirmed.
- `tool_confirmed`: each destructive call was preceded, since the last one, by an ask_user
  confirmation question naming its object, which the user answered yes.

The rubrics are PAPO's process reward (`DomainSpec.rubric_verifiers`); only the outcome
decides correctness.
"""

from __future__ import annotations

import json
from typing import Any

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Step, Trajectory, Verdict
from longhorizon.domains.spec import check_verifiers
from longhorizon.domains.tool.graph import OUTCOME, RUBRICS
from longhorizon.tools.base import ToolArgumentError
from longhorizon.tools.catalog import TOOLS
from longhorizon.tools.worlds import CONFIRM_WORDS, DESTRUCTIVE, PreconditionError, Session

VERIFIERS = frozenset({OUTCOME, *RUBRICS})
SCHEMA, GROUNDED, POLICY, CONFIRMED = RUBRICS
OPEN_TOOLS = frozenset({"ask_user", "find_user", "find_flights"})  # need no authentication


def _args(step: Step) -> dict[str, Any] | None:
    try:
        parsed = step.action.function.parsed_arguments()
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def final_state(task: Task, trajectory: Trajectory) -> dict[str, Any]:
    """The world after replaying the trajectory's successful state calls, as JSON values."""
    meta = task.metadata
    session = Session.open(meta["world"], meta["world_seed"])
    for step in trajectory.steps:
        name, args = step.action.function.name, _args(step)
        if step.error is not None or name == "ask_user" or args is None:
            continue
        try:
            session.call(name, args)
        except (PreconditionError, TypeError, KeyError):
            continue  # the episode saw the same error (its tools run the same code)
    return dict(json.loads(json.dumps(session.snapshot())))


def outcome(task: Task, trajectory: Trajectory) -> Verdict:
    goal = task.metadata.get("goal")
    state_ok = goal is not None and final_state(task, trajectory) == goal
    said = (trajectory.final_answer or "").lower()
    missing = [f for f in task.metadata.get("facts", []) if f.lower() not in said]
    passed = state_ok and not missing and trajectory.final_answer is not None
    details = {"state_matches": state_ok, "facts_missing": missing}
    return Verdict(verifier=OUTCOME, passed=passed, score=float(passed), details=details)


def schema_valid(task: Task, trajectory: Trajectory) -> Verdict:
    bad = []
    for step in trajectory.steps:
        name, args = step.action.function.name, _args(step)
        if name not in task.protocol.tools or args is None:
            bad.append(step.index)
            continue
        try:
            TOOLS[name].validate(args)
        except ToolArgumentError:
            bad.append(step.index)
    return _rubric(SCHEMA, trajectory, bad)


def grounded(task: Task, trajectory: Trajectory) -> Verdict:
    seen = task.instruction.lower()
    bad = []
    for step in trajectory.steps:
        args = _args(step) or {}
        acted = step.error is None and step.action.function.name != "ask_user"
        if acted and any(str(v).lower() not in seen for v in args.values()):
            bad.append(step.index)
        seen += "\n" + step.observation.lower()
    return _rubric(GROUNDED, trajectory, bad)


def _unconfirmed(trajectory: Trajectory) -> list[int]:
    """Indices of successful destructive calls without a yes to a question naming them."""
    bad, asked = [], []
    for step in trajectory.steps:
        name, args = step.action.function.name, _args(step) or {}
        if name == "ask_user" and step.error is None:
            question = str(args.get("question", "")).lower()
            if any(w in question for w in CONFIRM_WORDS) and step.observation.startswith("Yes"):
                asked.append(question)
        if name in DESTRUCTIVE and step.error is None:
            ids = [str(v).lower() for k, v in args.items() if k.endswith("_id") and k != "user_id"]
            if not any(all(i in q for i in ids) for q in asked):
                bad.append(step.index)
            asked = []
    return bad


def policy(task: Task, trajectory: Trajectory) -> Verdict:
    bad, authenticated = list(_unconfirmed(trajectory)), False
    for step in trajectory.steps:
        name = step.action.function.name
        if step.error is not None:
            continue
        if name == "find_user":
            authenticated = f"user_id:{task.metadata['user_id']}" in step.state_refs
        elif name not in OPEN_TOOLS and not authenticated:
            bad.append(step.index)
    return _rubric(POLICY, trajectory, sorted(set(bad)))


def confirmed(task: Task, trajectory: Trajectory) -> Verdict:
    del task
    return _rubric(CONFIRMED, trajectory, _unconfirmed(trajectory))


def _rubric(name: str, trajectory: Trajectory, bad: list[int]) -> Verdict:
    total = max(1, len(trajectory.steps))
    score = 1.0 - len(bad) / total
    return Verdict(verifier=name, passed=not bad, score=score, details={"failing_steps": bad})


CHECKS = {
    OUTCOME: outcome,
    SCHEMA: schema_valid,
    GROUNDED: grounded,
    POLICY: policy,
    CONFIRMED: confirmed,
}


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The task's verdicts (all five when it names none)."""
    check_verifiers(task, "tool", VERIFIERS)
    names = [s.name for s in task.verifiers] or [OUTCOME, *RUBRICS]
    return [CHECKS[n](task, trajectory) for n in names]
