"""A scripted expert for science tasks, solving through the harness with the tools a model
would use.

- A reasoning task (no tools): it writes the laws step by step, substitutes the stated
  values and answers (a formula, when an expression is asked).
- A python task: it writes the computation (values converted to SI, the law, the sum over
  the swept values) as one python cell and answers with the printed number.
- A lookup task: it searches the handbook for the material, visits the exact-title hit, reads
  the property off the page, computes with python and answers.

The task's subgraph says only what to look for: a looked-up value is used only after it was
read on a visited page, and a computed number only after python printed it. With
`error_rate > 0` some episodes slip the way solvers do (a factor of 10 in the answer, or a
dropped factor in a formula), so the verifier has failures to reject.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator
from typing import Any

import sympy

from longhorizon.core.messages import Message, last_observations
from longhorizon.core.task import Task
from longhorizon.domains.science.handbook import PROPERTIES, read_property
from longhorizon.domains.science.problems import sympy_expr
from longhorizon.domains.science.units import format_number, quantity, to_absolute

__all__ = ["ScienceExpert", "expert_script", "python_code"]

Turns = Generator[str, str, None]
_HIT = re.compile(r"^\s*\d+\. \[(?P<id>[^\]]+)\] (?P<title>.+?) \(score [-\d.e]+\)\s*$", re.M)
_RESULT = re.compile(r"RESULT = ([-+0-9.eE]+|nan|inf)")


def tool_call(name: str, **arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def _si(value: float, unit: str) -> tuple[float, str]:
    """(magnitude in SI base units, the base unit) of a stated value."""
    q = to_absolute(quantity(value, unit)).to_base_units()
    return float(q.magnitude), f"{q.units:~}" if unit else ""


def python_code(sub: dict[str, Any], values: dict[str, float]) -> str:
    """One cell: the quantities in SI, the law, the sum over a sweep; prints RESULT = x."""
    names = [q["name"] for q in sub["quantities"]]
    units = {q["name"]: q["unit"] for q in sub["quantities"]}
    lines = ["import math", ""]
    for name in names:
        if name == sub.get("sweep_var"):
            continue
        si, base = _si(values[name], units[name])
        note = f"  # {values[name]:.6g} {units[name]}".rstrip() + (
            f" = {si:.10g} {base}".rstrip() if units[name] and base != units[name] else ""
        )
        lines.append(f"{name} = {si!r}{note}")
    body = sympy.pycode(sympy_expr(sub["expr"], tuple(names)), fully_qualified_modules=True)
    unit = sub["target"]["unit"]
    scale, offset = _from_si(unit)
    lines += ["", f"def law({', '.join(names)}):", f"    return {body}", ""]
    args = ", ".join(names)
    if sub.get("sweep_var"):
        var = sub["sweep_var"]
        points = [_si(p, units[var])[0] for p in sub["sweep"]]
        lines += [
            f"{var}_values = {points!r}",
            f"results = [law({_call(names, var)}) / {scale!r} - {offset!r} for v in {var}_values]",
            "print('RESULT =', repr(sum(results) / len(results)))",
        ]
    else:
        lines.append(f"print('RESULT =', repr(law({args}) / {scale!r} - {offset!r}))")
    return "\n".join(lines)


def _call(names: list[str], var: str) -> str:
    return ", ".join("v" if n == var else n for n in names)


def _from_si(unit: str) -> tuple[float, float]:
    """(scale, offset): value in `unit` = SI value / scale - offset (offset only for °C)."""
    if not unit:
        return 1.0, 0.0
    if unit == "degC":
        return 1.0, 273.15
    return float(quantity(1.0, unit).to_base_units().magnitude), 0.0


class ScienceExpert:
    """A stateful script: a generator of turns fed with each turn's observations."""

    def __init__(self, task: Task, *, error_rate: float = 0.0, seed: int = 0) -> None:
        self.task = task
        self.sub: dict[str, Any] = task.metadata["subgraph"]
        self.kind: str = task.metadata["kind"]
        rng = random.Random(f"science-expert:{seed}:{task.id}")
        self.slip = rng.random() < error_rate
        self._turns: Turns | None = None
        self._guess = "0"

    def __call__(self, messages: list[Message]) -> str:
        last = messages[-1]
        if last.role == "user" and last.content != self.task.instruction:
            return f"I have to answer now.\n<answer>{self._guess}</answer>"
        if self._turns is None or last.role == "user":
            self._turns = self._solve()
            return next(self._turns)
        observation = last_observations(messages)
        try:
            return self._turns.send(observation)
        except StopIteration:
            return f"I have no further steps.\n<answer>{self._guess}</answer>"

    # ---- plans ------------------------------------------------------------------------------
    def _solve(self) -> Turns:
        values = {q["name"]: q["value"] for q in self.sub["quantities"]}
        if self.kind == "lookup":
            found = yield from self._look_up()
            if found is None:
                yield f"The handbook does not give the value.\n<answer>{self._guess}</answer>"
                return
            values[self.sub["lookup"]] = found
        if self.kind in ("lookup", "python"):
            yield from self._compute(values)
            return
        yield self._reason(values)

    def _look_up(self) -> Generator[str, str, float | None]:
        name, key = self.sub["material_name"], self.sub["lookup_property"]
        label = PROPERTIES[key].label.lower()
        hits = yield (
            f"The problem needs the {label} of {name}, which is in the reference handbook. "
            f"Let me search for it.\n" + tool_call("search", query=f"{name} {label}", k=5)
        )
        doc = _find_hit(hits, name)
        if doc is None:
            hits = yield (
                f"{name} is not among the results; searching for the name alone.\n"
                + tool_call("search", query=name, k=10)
            )
            doc = _find_hit(hits, name)
        if doc is None:
            return None
        page = yield (
            f"Result [{doc}] is the page of {name} (not a similarly named variant). "
            f"Let me read it.\n" + tool_call("visit", id=doc, goal=f"the {label} of {name}")
        )
        return read_property(page, key)

    def _compute(self, values: dict[str, float]) -> Turns:
        law = "; ".join(self.sub["laws"])
        intro = "The page states the value. " if self.kind == "lookup" else ""
        what = "the mean over the listed cases" if self.sub.get("sweep") else "the answer"
        output = yield (
            f"{intro}The laws: {law}. I compute {what} with python, converting every quantity "
            "to SI units first.\n" + tool_call("python", code=python_code(self.sub, values))
        )
        match = _RESULT.search(output)
        if match is None:
            yield f"The computation failed.\n<answer>{self._guess}</answer>"
            return
        value = float(match.group(1)) * (10 if self.slip else 1)
        unit = self.sub["target"]["unit"]
        yield f"The computation gives {self.sub['target']['symbol']}.\n" + _answer(value, unit)

    def _reason(self, values: dict[str, float]) -> str:
        target = self.sub["target"]
        steps = "\n".join(f"Step {i}: {law}." for i, law in enumerate(self.sub["laws"], 1))
        names = tuple(q["name"] for q in self.sub["quantities"])
        expr = sympy_expr(self.sub["expr"], names)
        if self.task.metadata["symbolic"]:
            kept = self.sub["answer_symbols"] or names
            target_expr = sympy_expr(str(self.task.answer), tuple(kept))
            final = target_expr * 2 if self.slip else target_expr
            return (
                f"{steps}\nCombining the steps: {target['symbol']} = {final}.\n"
                f"<answer>{final}</answer>"
            )
        value = _value(self.task) * (10 if self.slip else 1)
        given = ", ".join(f"{n} = {values[n]:.6g}" for n in names)
        return (
            f"{steps}\nCombining the steps: {target['symbol']} = {expr}.\n"
            f"With {given} (converted to SI units): {target['symbol']} = "
            f"{format_number(value, 5)} {target['unit']}.\n" + _answer(value, target["unit"])
        )


def _value(task: Task) -> float:
    """The stated data's exact answer (the reasoning the text shows, evaluated)."""
    return float(next(v.params["value"] for v in task.verifiers if v.name == "numeric"))


def _answer(value: float, unit: str) -> str:
    return f"<answer>{format_number(value, 5)}{' ' + unit if unit else ''}</answer>"


def _find_hit(observation: str, title: str) -> str | None:
    for match in _HIT.finditer(observation):
        if match.group("title").strip() == title:
            return match.group("id")
    return None


def expert_script(task: Task, *, error_rate: float = 0.0, seed: int = 0) -> ScienceExpert:
    """The script for `ScriptedAgent(renderer, expert_script(task))`."""
    return ScienceExpert(task, error_rate=error_rate, seed=seed)
