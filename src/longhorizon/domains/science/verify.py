"""The one verifier of the science domain: the answer (numeric with units, or symbolic) and,
for interaction-enriched tasks, the tools the task needs.

- `numeric`: the answer is read as a number and a unit (plain, LaTeX or \\boxed{}); it is
  converted to the asked unit (pint; a bare number is taken in the asked unit) and passes when
  |answer - target| <= rel_tol * |target| (rel_tol 1%, `tasks.REL_TOL`). A unit of another
  dimension fails.
- `symbolic`: the answer is parsed over the problem's symbols and passes when it equals the
  target: sympy first tries `simplify(a - b) == 0`, else both are evaluated at random positive
  points (angles in 0.1..1.2 rad) and must agree to 1e-9 relative at every one. A partly
  symbolic task (some quantities stated as numbers) has rounded coefficients: its points
  agree within its `rel_tol` (1%) and simplify is not asked.
- `tools_used` (a process check): the handbook pages E_q were read with visit, and python ran
  without error when the task needs computation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

import sympy

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains.science.answers import parse_formula, parse_quantity, to_quantity
from longhorizon.domains.science.tasks import NUMERIC, PROCESS, REL_TOL, SYMBOLIC
from longhorizon.domains.spec import check_verifiers

__all__ = [
    "VERIFIERS",
    "check_numeric",
    "check_symbolic",
    "final_answer",
    "verify",
    "verify_science",
]

VERIFIERS = frozenset({NUMERIC, SYMBOLIC, PROCESS})
_POINTS = 6
_SIMPLIFY_OPS = 200  # larger expressions skip simplify (slow) and go straight to points


def final_answer(trajectory: Trajectory) -> str | None:
    """The <answer> block, else the last \\boxed{} of the last assistant message."""
    if trajectory.final_answer is not None:
        return trajectory.final_answer
    last = next((m.content for m in reversed(trajectory.messages) if m.role == "assistant"), None)
    return last if last and "\\boxed{" in last else None


def _verdict(name: str, passed: bool, **details: Any) -> Verdict:
    return Verdict(verifier=name, passed=passed, score=float(passed), details=details)


def check_numeric(answer: str | None, params: Mapping[str, Any]) -> Verdict:
    target, unit = float(params["value"]), str(params.get("unit", ""))
    rel_tol = float(params.get("rel_tol", REL_TOL))
    parsed = parse_quantity(answer)
    if parsed is None:
        return _verdict(NUMERIC, False, answer=answer, target=target, reason="no number")
    magnitude, given_unit = parsed
    got = to_quantity(magnitude, given_unit or unit)
    if got is None:
        return _verdict(NUMERIC, False, answer=answer, target=target, reason="unknown unit")
    try:
        value = float(got.to(unit).magnitude if unit else got.to("dimensionless").magnitude)
    except Exception:  # pint's DimensionalityError and friends: another kind of quantity
        return _verdict(NUMERIC, False, answer=answer, target=target, reason="wrong dimension")
    passed = math.isfinite(value) and abs(value - target) <= rel_tol * abs(target)
    return _verdict(NUMERIC, passed, answer=answer, value=value, target=target, unit=unit)


def _sample(symbols: Sequence[sympy.Symbol], rng: random.Random) -> dict[sympy.Symbol, float]:
    return {
        s: rng.uniform(0.1, 1.2) if "theta" in s.name else rng.uniform(0.5, 3.0) for s in symbols
    }


def _same(
    a: sympy.Expr, b: sympy.Expr, symbols: Sequence[sympy.Symbol], rel_tol: float = 0.0
) -> tuple[bool, str]:
    tol = max(rel_tol, 1e-9)
    if not rel_tol and sympy.count_ops(a) + sympy.count_ops(b) <= _SIMPLIFY_OPS:
        try:
            if sympy.simplify(a - b) == 0:
                return True, "simplify"
        except Exception:  # simplify can fail on odd input; the points decide then
            pass
    rng = random.Random(0)
    for _ in range(_POINTS):
        point = _sample(symbols, rng)
        try:
            x, y = complex(a.evalf(subs=point)), complex(b.evalf(subs=point))
        except (TypeError, ValueError):
            return False, "not numeric"
        if not abs(x - y) <= tol * max(abs(y), 1e-12):
            return False, "points"
    return True, "points"


def check_symbolic(answer: str | None, params: Mapping[str, Any]) -> Verdict:
    names = list(params["symbols"])
    symbols = [sympy.Symbol(n, positive=True) for n in names]
    target = parse_formula(str(params["expr"]), names)
    got = parse_formula(answer, names)
    if got is None or target is None:
        return _verdict(SYMBOLIC, False, answer=answer, target=params["expr"], reason="no formula")
    stray = sorted(s.name for s in got.free_symbols if s not in set(symbols))
    if stray:
        return _verdict(SYMBOLIC, False, answer=answer, target=params["expr"], stray=stray)
    passed, how = _same(got, target, symbols, float(params.get("rel_tol", 0.0)))
    return _verdict(SYMBOLIC, passed, answer=answer, target=params["expr"], method=how)


def check_tools(trajectory: Trajectory, params: Mapping[str, Any]) -> Verdict:
    visited = {
        ref
        for step in trajectory.steps
        if step.action.function.name == "visit" and step.error is None
        for ref in step.state_refs
    }
    ran = any(s.action.function.name == "python" and s.error is None for s in trajectory.steps)
    missing = [p for p in params.get("visit", []) if p not in visited]
    python_missing = bool(params.get("python")) and not ran
    return _verdict(
        PROCESS, not missing and not python_missing, missing=missing, python_missing=python_missing
    )


def verify_science(task: Task, trajectory: Trajectory) -> list[Verdict]:
    check_verifiers(task, "science", VERIFIERS)
    answer = final_answer(trajectory)
    verdicts = []
    for spec in task.verifiers:
        if spec.name == NUMERIC:
            verdicts.append(check_numeric(answer, spec.params))
        elif spec.name == SYMBOLIC:
            verdicts.append(check_symbolic(answer, spec.params))
        else:
            verdicts.append(check_tools(trajectory, spec.params))
    if not verdicts:
        raise ValueError(f"task {task.id} has no verifier of the science domain")
    return verdicts


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The domain's checks (`DomainSpec.verdicts`, which `DomainSpec.verify` guards)."""
    return verify_science(task, trajectory)
