"""Matching a final answer to a physics reference: numbers with units, expressions by sympy.

What HiPhO and FrontierScience share. A reference is read once into a `Part` (numeric: value,
unit and tolerance for `check_numeric`; symbolic: expression and symbols for
`check_symbolic`), or refused (None) when our reader cannot take it; a response's answer is
then checked against it with the science domain's verifier. `prepare` and `normalise` make
the LaTeX of references and responses alike readable; `boxes` finds every \\boxed{}.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from longhorizon.domains.science.answers import (
    GREEK,
    latex_to_text,
    parse_formula,
    parse_quantity,
    strip_boxed,
)
from longhorizon.domains.science.tasks import REL_TOL
from longhorizon.domains.science.verify import check_numeric, check_symbolic

__all__ = [
    "Part",
    "boxes",
    "normalise",
    "numeric_part",
    "part_passes",
    "prepare",
    "symbolic_part",
    "symbols_of",
]

# names latex_to_text leaves that are functions or constants, not symbols
_FUNCTIONS = frozenset(
    [
        "sqrt",
        "sin",
        "cos",
        "tan",
        "cot",
        "asin",
        "acos",
        "atan",
        "exp",
        "log",
        "sinh",
        "cosh",
        "tanh",
        "pi",
    ]
)
# multi-letter names that stay whole (greek letters as latex_to_text writes them, and hbar)
_KEPT = frozenset(("hbar", *GREEK))
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_NAME = re.compile(r"\s*[A-Za-z][A-Za-z0-9_]*\s*(\([^()]*\))?\s*")  # "x", "x_0", "p(R)"
# vectors, derivatives and absolute values: the science reader has no form for them
_UNREADABLE = re.compile(r"\\(mathbf|hat|vec|dot|ddot|partial)|\\frac\{d|\|")


@dataclass(frozen=True)
class Part:
    """One answer of a question, ready for the science verifier."""

    kind: str  # "numeric" or "symbolic"
    params: dict[str, Any]  # check_numeric's or check_symbolic's params
    points: float
    reference: str


def prepare(text: str) -> str:
    """LaTeX the science reader lacks, made plain: the last \\boxed{}, \\approx as "=", \\%,
    the micro prefix, \\hbar, \\cot, \\lambda (a Python keyword), subscripts that end a
    name ("k_{B}T" is k_B T) and e^{...} with letters in the exponent as exp."""
    text = strip_boxed(text).replace("\\approx", "=").replace("\\%", "%")
    text = re.sub(r"\\mu\s*(?=\\mathrm|\\text|[A-Za-z])", "u", text)
    text = re.sub(r"\\(?:mathrm|text|rm|mathit)\s*\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"_\{([^{}]*)\}", r"_\1 ", text)
    text = re.sub(r"(?<![A-Za-z\\])e\s*\^\s*\{(?=[^{}]*[A-Za-z])", "\\\\exp{", text)
    text = text.replace("\\hbar", " hbar ").replace("\\cot", " cot ")
    text = re.sub(r"\\[Bb]ig+[lr]?", "", text)
    return re.sub(r"\\lambda(?![A-Za-z])", " lamda", text)


def normalise(text: str) -> str:
    """A formula as sympy-readable text: `prepare`, the science reader's `latex_to_text`,
    then multi-letter names split into letters ("mc^2" is m c^2) unless they are greek,
    functions or subscripted. Applied alike to references and responses."""
    plain = latex_to_text(prepare(text)).replace("[", "(").replace("]", ")")
    return _IDENT.sub(_split_name, plain)


def _split_name(match: re.Match[str]) -> str:
    name = match.group(0)
    if name in _FUNCTIONS or name in _KEPT or "_" in name or len(name) == 1:
        return name
    if name.startswith(tuple(_KEPT)) or not name.isalpha():
        return name
    return " " + " ".join(name) + " "


def symbols_of(expr_text: str) -> list[str]:
    """The symbol names of a normalised expression (right side of its last "=")."""
    side = expr_text.split("=")[-1]
    return sorted({n for n in _IDENT.findall(side) if n not in _FUNCTIONS})


def numeric_part(answer: str, unit: str | None, points: float) -> Part | None:
    """A numeric reference (in `unit`, else the unit it states), or None if unreadable."""
    text = latex_to_text(prepare(answer))
    span = re.fullmatch(r"\s*\(?\[\s*([^,\]]+),\s*([^\]]+)\]\)?\s*(.*)", text.split("=")[-1])
    rel_tol = REL_TOL
    if span:  # a range [a, b]: its middle, with a tolerance that covers both ends
        lo, hi = parse_quantity(span.group(1)), parse_quantity(span.group(2))
        if lo is None or hi is None:
            return None
        value, given = (lo[0] + hi[0]) / 2, span.group(3).strip() or hi[1]
        rel_tol = max(REL_TOL, abs(hi[0] - lo[0]) / 2 / abs(value) + REL_TOL)
    elif (parsed := parse_quantity(text)) is not None:
        value, given = parsed
    else:
        constant = parse_formula(text, [])
        if constant is None or constant.free_symbols:
            return None
        value, given = float(constant), ""
    want = latex_to_text(prepare(unit)).replace(" ", "") if unit else given.replace(" ", "")
    want = {"%": "percent", "degrees": "degree", "radians": "radian"}.get(want, want)
    params = {"value": value, "unit": want, "rel_tol": rel_tol}
    if not _passes(check_numeric, lambda: f"{value} {want}", params):  # a unit pint cannot read
        return None
    return Part("numeric", params, points, answer)


def symbolic_part(answer: str, points: float) -> Part | None:
    """A symbolic reference over the symbols it names, or None if unreadable."""
    if _UNREADABLE.search(answer):
        return None
    text = normalise(answer)
    names, expr = symbols_of(text), text.split("=")[-1].strip()
    left = text.split("=")[0] if "=" in text else ""
    if "\\" in text or (not names and left and not _NAME.fullmatch(left)):
        return None  # a LaTeX command we cannot read, or an equation "f(x, y) = 0"
    params: dict[str, Any] = {"symbols": names, "expr": expr}
    if re.search(r"\d\.\d", expr):  # rounded coefficients: compare within the tolerance
        params["rel_tol"] = REL_TOL
    if parse_formula(expr, names) is None or not _passes(check_symbolic, lambda: expr, params):
        return None
    return Part("symbolic", params, points, answer)


def part_passes(part: Part, answer: str) -> bool:
    """Whether a response's answer (LaTeX or plain; empty: no answer) matches the part."""
    if not answer:
        return False
    if part.kind == "numeric":
        return _passes(check_numeric, lambda: latex_to_text(prepare(answer)), part.params)
    return _passes(check_symbolic, lambda: normalise(answer), part.params)


def _passes(check: Any, text: Callable[[], str], params: dict[str, Any]) -> bool:
    """The check's verdict; False when reading or checking raises (a model writes anything)."""
    try:
        return bool(check(text(), params).passed)
    except Exception:  # sympy fails on some odd formulas ("\exp!(x)" in one reference)
        return False


def boxes(response: str) -> list[str]:
    """The contents of every \\boxed{...} of a response, in order (braces matched)."""
    found, at = [], response.find("\\boxed{")
    while at >= 0:
        depth, start = 0, at + len("\\boxed")
        for i in range(start, len(response)):
            depth += {"{": 1, "}": -1}.get(response[i], 0)
            if depth == 0:
                found.append(response[start + 1 : i])
                break
        at = response.find("\\boxed{", at + 1)
    return found
