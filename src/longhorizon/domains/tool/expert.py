"""A scripted expert for tool-calling tasks: it follows the task's plan one call a turn, asks the
user (ask_user) for each private detail the first time a call needs it, reads every id it
passes on from an observation, and asks for confirmation before each destructive call.

The plan and the selection rule (which row of a list the user means) come from the task's
metadata, as a reader of the user's words would know them; values never do.

With `error_rate > 0` some episodes go wrong the way agents do:
- `typo` (recoverable): one call carries a mistyped id; the tool answers "no ... with id",
  and the expert calls again with the id as observed;
- `no_confirm`: it makes the destructive call without asking first (the state is right, the
  policy and confirmation rubrics fail: a near miss synthesis rejects and keeps in the KAG).
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from typing import Any

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER
from longhorizon.tools.worlds import DESTRUCTIVE

MISTAKES = ("typo", "no_confirm")
QUESTIONS = {
    "email": "To verify your identity, what is your email?",
    "order_id": "What is your order number?",
    "booking_id": "What is your booking id?",
    "address": "What is the new shipping address?",
    "reason": "What is the reason for the cancellation?",
    "origin": "Which city are you departing from?",
    "date": "On which date do you want to fly?",
}
VERBS = {
    "cancel_order": "cancel order {order_id} (reason: {reason})",
    "update_address": "change the shipping address of order {order_id} to {address}",
    "book_flight": "book flight {flight_id} for you",
    "cancel_booking": "cancel booking {booking_id}",
}
DONE = {
    "cancel_order": "Your order is cancelled.",
    "update_address": "The shipping address of your order is updated.",
    "get_order": "I looked up your order.",
    "book_flight": "Your flight is booked.",
    "cancel_booking": "Your booking is cancelled.",
    "get_booking": "I looked up your booking.",
}
Turns = Generator[str, str, None]


class _Stuck(Exception):
    """An observation the plan cannot use: the expert answers with what it has."""


def tool_call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def _select(rows: list[dict[str, Any]], rule: dict[str, Any]) -> dict[str, Any]:
    if rule.get("cheapest"):
        return min((r for r in rows if r["seats"] > 0), key=lambda r: r["price"])
    return next(r for r in rows if all(r.get(k) == v for k, v in rule.items()))


class ToolExpert:
    """A stateful script: a generator of turns fed with each turn's observation."""

    def __init__(self, task: Task, *, error_rate: float = 0.0, seed: int = 0) -> None:
        self.task, self.meta = task, task.metadata
        rng = random.Random(f"expert:{seed}:{task.id}")
        self.mistake = rng.choice(MISTAKES) if rng.random() < error_rate else None
        self.notes: list[str] = []
        self._turns: Turns | None = None
        self._last = ""

    def __call__(self, messages: list[Message]) -> str:
        last = messages[-1]
        if last.role == "user" and last.content != self.task.instruction:
            if last.content == COMPACT_PROMPT:
                return "Task: " + self.task.instruction + "\nFound: " + "; ".join(self.notes)
            if DIGEST_HEADER in (last.content or ""):
                return self._last
            return _answer("I have to stop here.")
        try:
            if self._turns is None or last.role == "user":
                self._turns = self._solve()
                self._last = next(self._turns)
            else:
                self._last = self._turns.send(last.content or "")
        except StopIteration:
            self._last = _answer("I have no further steps.")
        except _Stuck as exc:
            self._last = _answer(f"I could not finish: {exc}")
        return self._last

    def _solve(self) -> Turns:
        known: dict[str, Any] = {}
        outputs: list[Any] = []
        for step in self.meta["plan"]:
            args: dict[str, Any] = {}
            for arg, source in step["args"].items():
                if "user" in source:
                    kind = source["user"]
                    if kind not in known:
                        known[kind] = yield from self._ask_detail(kind)
                    args[arg] = known[kind]
                elif "public" in source:
                    args[arg] = self.meta["public"][source["public"]]
                else:
                    args[arg] = outputs[source["step"]][source["field"]]
            if step["tool"] in DESTRUCTIVE and self.mistake != "no_confirm":
                what = VERBS[step["tool"]].format(**args)
                reply = yield _ask(f"Please confirm: shall I {what}? Answer yes or no.")
                if not reply.startswith("Yes"):
                    yield _answer("You did not confirm, so I changed nothing.")
                    return
            value = yield from self._call(step["tool"], args)
            if isinstance(value, list):
                value = _select(value, self.meta["select"].get(step["tool"], {}))
            self.notes.append(f"{step['tool']}: {value}")
            outputs.append(value)
        yield _answer(self._summary(outputs))

    def _ask_detail(self, kind: str) -> Generator[str, str, str]:
        reply = yield _ask(QUESTIONS[kind])
        if " is " not in reply:
            raise _Stuck(f"the user did not give the {kind}")
        return reply.split(" is ", 1)[1].rstrip(".")

    def _call(self, name: str, args: dict[str, Any]) -> Generator[str, str, Any]:
        keys = [k for k in args if k.endswith("_id")]
        if self.mistake == "typo" and keys:
            self.mistake = None
            wrong = {**args, keys[0]: str(args[keys[0]])[:-1]}
            yield f"Calling {name}.\n{tool_call(name, **wrong)}"
            again = "That id was mistyped; calling again with the id as observed."
            observation = yield f"{again}\n{tool_call(name, **args)}"
        else:
            observation = yield f"Calling {name}.\n{tool_call(name, **args)}"
        try:
            return json.loads(observation)
        except ValueError:
            raise _Stuck(observation[:200]) from None

    def _summary(self, outputs: list[Any]) -> str:
        target, field = self.meta["target"], self.meta.get("answer_field")
        fact = f" The {field.replace('_', ' ')} is {outputs[-1][field]}." if field else ""
        return DONE[target] + fact


def _ask(question: str) -> str:
    return f"I need to ask you.\n{tool_call('ask_user', question=question)}"


def _answer(text: str) -> str:
    return f"<answer>{text}</answer>"


def expert_script(task: Task, *, error_rate: float = 0.0, seed: int = 0) -> ToolExpert:
    """The script for `ScriptedAgent(renderer, expert_script(task))`."""
    return ToolExpert(task, error_rate=error_rate, seed=seed)
