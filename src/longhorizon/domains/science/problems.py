"""A problem is a seed's subgraph made concrete: its quantities with values, the law (a sympy
expression), the steps, and what the rewrites changed. `answer(problem)` computes the exact
answer with units (pint); every rewrite recomputes it from the rewritten quantities.

Rewrites (self-play directions):
- `harder`: a feeder law derives one given from new ones (one more step), and, with some
  probability or when no feeder exists, the answer is asked as a symbolic expression. A seed
  that already takes `hard_steps` steps is returned unchanged.
- `with_python`: one given is swept over several values and the answer is the mean over the
  cases: arithmetic that calls for the python tool.
- `with_lookup`: a material property is left out; it is on the material's handbook page,
  found with search and read with visit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import sympy

from longhorizon.domains.science.families import FAMILIES, Family, Feeder, Var
from longhorizon.domains.science.handbook import CONSTANTS, Handbook, Material
from longhorizon.domains.science.units import quantity, round_sig, to_absolute

__all__ = [
    "Kind",
    "Problem",
    "answer",
    "draw_seed",
    "evaluate",
    "harder",
    "si_value",
    "symbolic_answer",
    "symbols_of",
    "sympy_expr",
    "with_lookup",
    "with_python",
]

Kind = Literal["seed", "harder", "python", "lookup"]
SWEEP_POINTS = 6
_DRAWS = 50


@dataclass(frozen=True)
class Problem:
    family: str
    variables: tuple[Var, ...]  # what the statement lists (after any composition)
    values: Mapping[str, float]  # every quantity's value in its unit, derived ones included
    expr: str  # the answer as an expression of the listed variables
    laws: tuple[str, ...]
    material: Material | None = None
    kind: Kind = "seed"
    sentences: tuple[str, ...] = ()  # what composition adds to the setting
    symbolic: bool = False
    sweep: tuple[str, tuple[float, ...]] | None = None  # (variable, its values)
    lookup: str | None = None  # the variable whose value is in the handbook
    unchanged: bool = False  # a harder rewrite of an already hard seed
    composed: tuple[str, ...] = field(default=())  # the variables feeders replaced
    keep: tuple[str, ...] = ()  # symbolic: the symbols the answer is in (the rest are stated)

    @property
    def spec(self) -> Family:
        return FAMILIES[self.family]

    @property
    def steps(self) -> int:
        return len(self.laws)


# ---- evaluation with units -------------------------------------------------------------------


@lru_cache(maxsize=256)
def sympy_expr(expr: str, names: tuple[str, ...]) -> sympy.Expr:
    local = {n: sympy.Symbol(n, positive=True) for n in names}
    return sympy.sympify(expr, locals=local)


def symbols_of(problem: Problem) -> tuple[str, ...]:
    """The answer's symbols: all the variables, or those a partly symbolic task keeps."""
    return problem.keep or tuple(v.name for v in problem.variables)


def si_value(var: Var, value: float) -> float:
    """A stated value in SI base units (angles in radians, temperatures in kelvin)."""
    return float(to_absolute(quantity(value, var.unit)).to_base_units().magnitude)


def symbolic_answer(problem: Problem) -> str:
    """The target formula: the law over the kept symbols, the other quantities substituted
    in SI units (so the formula takes and gives SI values)."""
    names = tuple(v.name for v in problem.variables)
    expr = sympy_expr(problem.expr, names)
    fixed = {
        sympy.Symbol(v.name, positive=True): sympy.Float(si_value(v, problem.values[v.name]), 15)
        for v in problem.variables
        if v.name not in symbols_of(problem)
    }
    return str(expr.subs(fixed)) if fixed else problem.expr


def evaluate(expr: str, variables: tuple[Var, ...], values: Mapping[str, float], unit: str) -> Any:
    """`expr` with every variable a pint quantity in its unit; the result in `unit` (pint
    raises if the law's dimensions do not give `unit`)."""
    names = tuple(v.name for v in variables)
    fn = sympy.lambdify([sympy.Symbol(n, positive=True) for n in names], sympy_expr(expr, names))
    args = [to_absolute(quantity(values[v.name], v.unit)) for v in variables]
    result = fn(*args)
    if not hasattr(result, "to"):  # a plain number: the law is dimensionless
        result = quantity(float(result), "")
    return result.to(unit) if unit else result.to("dimensionless")


def answer(problem: Problem) -> float:
    """The exact numeric answer in the family's unit (a sweep: the mean over its values)."""
    unit = problem.spec.unit
    if problem.sweep is None:
        return float(evaluate(problem.expr, problem.variables, problem.values, unit).magnitude)
    name, points = problem.sweep
    total = 0.0
    for point in points:
        values = {**problem.values, name: point}
        total += float(evaluate(problem.expr, problem.variables, values, unit).magnitude)
    return total / len(points)


# ---- seeds -----------------------------------------------------------------------------------


def _draw(var: Var, rng: random.Random) -> float:
    if var.log:
        return round_sig(math.exp(rng.uniform(math.log(var.lo), math.log(var.hi))), 3)
    return round_sig(rng.uniform(var.lo, var.hi), 3)


def _value(var: Var, rng: random.Random, material: Material | None) -> float:
    if var.fixed is not None:
        return var.fixed
    if var.constant is not None:
        return CONSTANTS[var.constant].value
    if var.material is not None:
        assert material is not None, f"{var.name} needs a material"
        return material.values[var.material]
    return _draw(var, rng)


def _valid(problem: Problem) -> bool:
    try:
        value = answer(problem)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        return False
    return math.isfinite(value) and problem.spec.valid(problem.values)


def draw_seed(family: Family, rng: random.Random, handbook: Handbook) -> Problem | None:
    """A seed of `family` with fresh values; None when no valid draw is found."""
    for _ in range(_DRAWS):
        needs = any(v.material for v in family.variables)
        material = handbook.pick(rng) if needs else None
        values = {v.name: _value(v, rng, material) for v in family.variables}
        problem = Problem(family.name, family.variables, values, family.expr, family.laws, material)
        if _valid(problem):
            return problem
    return None


# ---- rewrites --------------------------------------------------------------------------------


def harder(
    seed: Problem, rng: random.Random, handbook: Handbook, hard_steps: int, symbolic_share: float
) -> Problem | None:
    """One composed step and/or a symbolic answer; an already hard seed comes back unchanged."""
    if seed.steps >= hard_steps:
        return replace(seed, unchanged=True)
    problem = seed
    feeders = [f for f in seed.spec.feeders if f.replaces in seed.values]
    if feeders:
        composed = _compose(seed, rng.choice(feeders), rng, handbook)
        if composed is None:
            return None
        problem = composed
    symbolic = not feeders or rng.random() < symbolic_share
    return replace(problem, kind="harder", symbolic=symbolic, keep=_keep(problem, rng, symbolic))


def _keep(problem: Problem, rng: random.Random, symbolic: bool) -> tuple[str, ...]:
    """All symbols (a third of the time), else two or more with the rest stated as numbers:
    the stated values make partly symbolic tasks as many as the numeric ones."""
    names = [v.name for v in problem.variables]
    if not symbolic or len(names) <= 2 or rng.random() < 1 / 3:
        return ()
    kept = set(rng.sample(names, rng.randint(2, len(names) - 1)))
    return tuple(n for n in names if n in kept)


def _compose(
    seed: Problem, feeder: Feeder, rng: random.Random, handbook: Handbook
) -> Problem | None:
    needs = any(v.material for v in feeder.variables)
    if needs and seed.material is not None:
        return None  # one material per problem keeps the statement unambiguous
    for _ in range(_DRAWS):
        material = handbook.pick(rng) if needs else seed.material
        new = {v.name: _value(v, rng, material) for v in feeder.variables}
        replaced = seed.spec.var(feeder.replaces)
        scope = (*feeder.variables, *(v for v in seed.variables if v is not replaced))
        values = {**seed.values, **new}
        derived = evaluate(feeder.expr, scope, values, replaced.unit).magnitude
        variables = tuple(
            w for v in seed.variables for w in (feeder.variables if v is replaced else (v,))
        )
        names = tuple(v.name for v in variables)
        expr = sympy_expr(seed.expr, symbols_of(seed)).subs(
            sympy.Symbol(feeder.replaces, positive=True),
            sympy_expr(feeder.expr, names),
        )
        problem = replace(
            seed,
            variables=variables,
            values={**values, feeder.replaces: float(derived)},
            expr=str(expr),
            laws=(feeder.law, *seed.laws),
            material=material,
            sentences=(*seed.sentences, feeder.sentence),
            composed=(*seed.composed, feeder.replaces),
        )
        if _valid(problem):
            return problem
    return None


def sweepable(problem: Problem) -> list[Var]:
    return [v for v in problem.variables if v.drawn]


def with_python(seed: Problem, rng: random.Random) -> Problem | None:
    """Sweep one drawn quantity over `SWEEP_POINTS` values; the answer is the mean."""
    candidates = sweepable(seed)
    if not candidates:
        return None
    var = rng.choice(candidates)
    for _ in range(_DRAWS):
        points = tuple(sorted(round_sig(_draw(var, rng), 4) for _ in range(SWEEP_POINTS)))
        if len(set(points)) < SWEEP_POINTS:
            continue
        if all(_valid(replace(seed, values={**seed.values, var.name: p})) for p in points):
            return replace(seed, kind="python", sweep=(var.name, points))
    return None


def with_lookup(seed: Problem) -> Problem | None:
    """Leave the material's property out of the statement: it must be looked up."""
    looked = [v for v in seed.variables if v.material is not None]
    if seed.material is None or not looked:
        return None
    return replace(seed, kind="lookup", lookup=looked[0].name)
