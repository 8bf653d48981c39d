"""Problems as tasks: the statement, the answer, the verifier specs, the protocol, and the
seed's subgraph (quantities, laws, constants, steps) with the rewrite's provenance."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Protocol, Task, VerifierSpec
from longhorizon.domains.science.families import Var
from longhorizon.domains.science.problems import Problem, answer, symbolic_answer, symbols_of

__all__ = [
    "DOMAIN",
    "NUMERIC",
    "PROCESS",
    "REL_TOL",
    "SCIENCE_TOOLS",
    "SYMBOLIC",
    "SYSTEM_PROMPT",
    "TOOL_STEPS",
    "science_protocol",
    "statement",
    "task_from_problem",
]

DOMAIN = "science"
GENERATOR = "longhorizon.domains.science.task_from_problem"
SCIENCE_TOOLS: tuple[str, ...] = ("search", "visit", "python")
NUMERIC, SYMBOLIC, PROCESS = "numeric", "symbolic", "tools_used"
# 1%: problems state their data to 3 significant figures, so a correct solution that rounds
# intermediate results stays well inside it, while a slipped factor (10, a wrong unit
# prefix, a missed step) is far outside.
REL_TOL = 0.01
TOOL_STEPS = 4  # a lookup on the expert's path: search (a second one if needed), visit, python
MAX_TURNS = 12
SYSTEM_PROMPT = (
    "You solve physics and chemistry problems step by step. When tools are offered, use "
    "python for heavy arithmetic, and search then visit to read values from the reference "
    "handbook; never invent a value the problem tells you to look up.\n"
    "Give the final answer inside <answer></answer>:\n"
    "- a number with a unit when a unit is asked, e.g. <answer>3.52 m/s</answer>, "
    "<answer>4.1e-3 mol/L</answer>, <answer>26.9 degC</answer> (any equivalent unit is "
    "accepted: 0.00352 km/s is right too; a bare number is read in the asked unit);\n"
    "- a plain number when the quantity has no unit, e.g. <answer>2.87</answer>;\n"
    "- a formula in the problem's symbols when an expression is asked, in Python/sympy or "
    "LaTeX syntax, e.g. <answer>v_0**2*sin(2*theta)/g</answer> or "
    "<answer>\\frac{v_0^2 \\sin(2\\theta)}{g}</answer>.\n"
    "Numeric answers are accepted within 1% relative error; \\boxed{} is accepted too."
)


def science_protocol(tools: tuple[str, ...] = SCIENCE_TOOLS) -> Protocol:
    return Protocol(tools=tools, budgets=Budgets(max_turns=MAX_TURNS), system_prompt=SYSTEM_PROMPT)


# ---- the statement -----------------------------------------------------------------------------


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


def _line(var: Var, problem: Problem) -> str:
    material = problem.material.name if problem.material else ""
    text = var.text.format(material=material)
    if problem.symbolic and var.name in symbols_of(problem):
        return f"- {text}: {var.name}"
    if problem.lookup == var.name:
        return (
            f"- {text}, {var.name}: not given here; look it up on the page of {material} in "
            "the reference handbook"
        )
    if problem.sweep is not None and problem.sweep[0] == var.name:
        points = ", ".join(f"{p:.6g}{_unit(var.unit)}" for p in problem.sweep[1])
        return f"- {text}, {var.name}: each of {points} in turn"
    return f"- {text}: {var.name} = {problem.values[var.name]:.6g}{_unit(var.unit)}"


def _find(problem: Problem) -> str:
    spec = problem.spec
    if problem.symbolic:
        names = ", ".join(symbols_of(problem))
        find = f"Find {spec.target}, {spec.symbol}, as an expression in the symbols {names}"
        if problem.keep:
            return f"{find}, with every quantity in SI base units (the answer in SI units too)."
        return f"{find}."
    unit = f", in {spec.unit}" if spec.unit else " (a pure number)"
    if problem.sweep is not None:
        n = len(problem.sweep[1])
        return (
            f"The situation is worked out once for each of the {n} values listed. Find the "
            f"mean of the {n} values of {spec.target}, {spec.symbol}{unit}."
        )
    return f"Find {spec.target}, {spec.symbol}{unit}."


def statement(problem: Problem) -> str:
    material = problem.material.name if problem.material else ""
    setting = " ".join((problem.spec.setting, *problem.sentences)).format(material=material)
    known = "\n".join(_line(v, problem) for v in problem.variables)
    return f"{setting}\nKnown quantities:\n{known}\n{_find(problem)}"


# ---- the task ----------------------------------------------------------------------------------


def _answer_text(problem: Problem) -> str:
    if problem.symbolic:
        return symbolic_answer(problem)
    return f"{answer(problem):.10g}{_unit(problem.spec.unit)}"


def _verifiers(problem: Problem) -> list[VerifierSpec]:
    if problem.symbolic:
        # Stated numbers make coefficients the solver rounds: those compare within REL_TOL.
        params = {
            "expr": symbolic_answer(problem),
            "symbols": list(symbols_of(problem)),
            "rel_tol": REL_TOL if problem.keep else 0.0,
        }
        check = VerifierSpec(name=SYMBOLIC, params=params)
    else:
        params = {"value": answer(problem), "unit": problem.spec.unit, "rel_tol": REL_TOL}
        check = VerifierSpec(name=NUMERIC, params=params)
    if problem.kind == "lookup":
        assert problem.material is not None
        need = {"visit": [problem.material.id], "python": False}
        return [check, VerifierSpec(name=PROCESS, params=need)]
    if problem.kind == "python":
        return [check, VerifierSpec(name=PROCESS, params={"visit": [], "python": True})]
    return [check]


def subgraph(problem: Problem) -> dict[str, Any]:
    """The seed's subgraph as the KAG keeps it: quantities, laws, constants, steps."""
    quantities = [
        {
            "name": v.name,
            "text": v.text,
            "unit": v.unit,
            "value": problem.values[v.name],
            "role": _role(v, problem),
        }
        for v in problem.variables
    ]
    return {
        "family": problem.family,
        "topic": problem.spec.topic,
        "quantities": quantities,
        "derived": {n: problem.values[n] for n in problem.composed},
        "laws": list(problem.laws),
        "expr": problem.expr,
        "answer_symbols": list(problem.keep),
        "constants": [v.constant for v in problem.variables if v.constant],
        "material": problem.material.id if problem.material else None,
        "material_name": problem.material.name if problem.material else None,
        "sweep": list(problem.sweep[1]) if problem.sweep else None,
        "sweep_var": problem.sweep[0] if problem.sweep else None,
        "lookup": problem.lookup,
        "lookup_property": _lookup_property(problem),
        "steps": problem.steps,
        "target": {"symbol": problem.spec.symbol, "unit": problem.spec.unit},
    }


def _role(v: Var, problem: Problem) -> str:
    if problem.lookup == v.name:
        return "looked_up"
    if problem.sweep is not None and problem.sweep[0] == v.name:
        return "swept"
    if v.constant:
        return "constant"
    return "material" if v.material else "given"


def _lookup_property(problem: Problem) -> str | None:
    if problem.lookup is None:
        return None
    return next(v.material for v in problem.variables if v.name == problem.lookup)


def task_id(instruction: str, answer_text: str) -> str:
    key = json.dumps([instruction, answer_text]).encode()
    return f"science-{hashlib.sha256(key).hexdigest()[:12]}"


def task_from_problem(
    problem: Problem, seed_task: str | None = None, seed: int | None = None
) -> Task:
    """The task of a problem; `seed_task` is the id of the seed it was rewritten from."""
    instruction = statement(problem)
    answer_text = _answer_text(problem)
    tools = SCIENCE_TOOLS if problem.kind in ("python", "lookup") else ()
    this = task_id(instruction, answer_text)
    return Task(
        id=this,
        domain=DOMAIN,
        instruction=instruction,
        answer=answer_text,
        evidence=[problem.material.id] if problem.kind == "lookup" and problem.material else [],
        verifiers=_verifiers(problem),
        protocol=science_protocol(tools),
        provenance=Provenance(
            source="synthetic",
            generator=GENERATOR,
            seed=seed,
            extra={
                "rewrite": problem.kind,
                "seed_task": seed_task or this,
                "unchanged": problem.unchanged,
                "composed": list(problem.composed),
            },
        ),
        metadata={
            "family": problem.family,
            "topic": problem.spec.topic,
            "kind": problem.kind,
            "symbolic": problem.symbolic,
            "steps": problem.steps,
            "tools": bool(tools),
            "subgraph": subgraph(problem),
        },
    )
