"""Reading answers: numbers with units and formulas, from plain text, LaTeX or \\boxed{}.

`parse_quantity("3.2 \\times 10^{3}\\,\\mathrm{J\\cdot kg^{-1}}")` gives (3200.0, "J*kg**-1");
`parse_formula("\\frac{v_0^2\\sin(2\\theta)}{g}", names)` gives a sympy expression over the
named symbols. Both return None when the text is not an answer of that shape.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sympy
from sympy.parsing.sympy_parser import (
    convert_xor,
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from longhorizon.domains.science.units import UREG, Quantity

__all__ = [
    "GREEK",
    "latex_to_text",
    "parse_formula",
    "parse_quantity",
    "strip_boxed",
    "to_quantity",
]

_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*)$", re.DOTALL)
GREEK = (
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "pi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Phi",
    "Psi",
    "Omega",
)
_BARE_ARG = r"\s*(\d*\s*(?:\\[A-Za-z]+|[A-Za-z])(?:_\{?\w+\}?)?)(?![\w({])"
_TRANSFORMS = (*standard_transformations, implicit_multiplication_application, convert_xor)
_UNIT_WORDS = {
    "°C": "degC",
    "℃": "degC",
    "°F": "degF",
    "°": "degree",
    "Ω": "ohm",
    "µ": "u",
    "μ": "u",
    "·": "*",
    "×": "*",
    "−": "-",
    "⁻": "-",
    "²": "**2",
    "³": "**3",
}


def strip_boxed(text: str) -> str:
    """The content of the last \\boxed{...} (braces matched), else the text itself."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return text.strip()
    body = _braced(text, start + len("\\boxed"))
    return body[0].strip() if body else text.strip()


def _braced(text: str, open_at: int) -> tuple[str, int] | None:
    """(content, index after the closing brace) of the group opening at text[open_at]."""
    if open_at >= len(text) or text[open_at] != "{":
        return None
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at + 1 : i], i + 1
    return None


def _replace_command(text: str, command: str, arity: int, build: Any) -> str:
    """Replace \\command{a}{b}... by build(a, b, ...), innermost arguments handled first."""
    while (at := text.find(command)) >= 0:
        pos, args = at + len(command), []
        for _ in range(arity):
            while pos < len(text) and text[pos] == " ":
                pos += 1
            got = _braced(text, pos)
            if got is None:
                return text[:at] + text[at + len(command) :]  # malformed: drop the command
            args.append(got[0])
            pos = got[1]
        text = text[:at] + build(*args) + text[pos:]
    return text


def latex_to_text(text: str) -> str:
    """LaTeX math as sympy/pint-readable text (fractions, roots, powers, greek, \\cdot)."""
    text = text.replace("$", "").replace("\\left", "").replace("\\right", "")
    for space in ("\\,", "\\;", "\\!", "\\ ", "~"):
        text = text.replace(space, " ")
    for wrapper in ("\\mathrm", "\\text", "\\operatorname", "\\mathit", "\\rm"):
        text = _replace_command(text, wrapper, 1, lambda a: a)
    for frac in ("\\dfrac", "\\tfrac", "\\frac"):
        text = _replace_command(text, frac, 2, lambda a, b: f"(({a})/({b}))")
    text = re.sub(r"\\sqrt\[([^\]]+)\]", r"\\root{\1}", text)
    text = _replace_command(text, "\\root", 2, lambda n, a: f"(({a})**(1/({n})))")
    text = _replace_command(text, "\\sqrt", 1, lambda a: f"sqrt({a})")
    text = re.sub(r"\^\s*\\circ", "°", text)
    text = re.sub(r"\\(cdot|times)", "*", text)
    text = text.replace("\\ln", " log ").replace("\\pi", " pi ")
    functions = r"\\(sin|cos|tan|arcsin|arccos|arctan|exp|log|sinh|cosh|tanh)"
    # "\sin 2\theta" is sin(2 theta): a bare argument is one (numbered) symbol
    text = re.sub(functions + _BARE_ARG, r" \1(\2)", text)
    text = re.sub(functions + r"(?![A-Za-z])", r" \1 ", text)
    greek = r"\\(" + "|".join(GREEK) + r")(?![A-Za-z])"
    text = re.sub(greek, lambda m: " " + m.group(1).replace("var", ""), text)
    text = re.sub(r"_\{([^{}]*)\}", r"_\1", text)
    text = text.replace("^", "**").replace("{", "(").replace("}", ")")
    return text.replace("arcsin", "asin").replace("arccos", "acos").replace("arctan", "atan")


def _unit_text(text: str) -> str:
    for old, new in _UNIT_WORDS.items():
        text = text.replace(old, new)
    text = text.strip().rstrip(".").strip()
    return re.sub(r"\*\*\s*\(\s*(-?\d+)\s*\)", r"**\1", text)


def parse_quantity(text: str | None) -> tuple[float, str] | None:
    """(magnitude, unit text) of a numeric answer; after the last "=" when there is one."""
    if text is None:
        return None
    body = latex_to_text(strip_boxed(text))
    body = body.split("=")[-1].replace("×", "*").replace("−", "-")
    body = re.sub(r"(\d)\s*\*\s*10\s*\*\*\s*\(?\s*([-+]?\d+)\s*\)?", r"\1e\2", body)
    match = _NUMBER.match(body)
    if match is None:
        return None
    return float(match.group(1)), _unit_text(match.group(2))


def to_quantity(magnitude: float, unit: str) -> Any | None:
    """A pint quantity, or None when the unit text is not a unit."""
    try:
        units = UREG.parse_units(unit) if unit else UREG.dimensionless
    except Exception:  # pint raises several error types for text that is not a unit
        return None
    return Quantity(magnitude, units)


def parse_formula(text: str | None, names: Sequence[str]) -> sympy.Expr | None:
    """A sympy expression over `names` (positive symbols); the right side of an equation."""
    if text is None:
        return None
    body = latex_to_text(strip_boxed(text)).split("=")[-1].strip()
    local = {n: sympy.Symbol(n, positive=True) for n in names}
    try:
        expr = parse_expr(body, local_dict=local, transformations=_TRANSFORMS, evaluate=True)
    except Exception:  # SyntaxError, TokenError, TypeError...: not a formula
        return None
    return expr if isinstance(expr, sympy.Expr) else None
