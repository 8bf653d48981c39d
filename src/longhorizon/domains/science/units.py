"""Quantities with units: one pint registry for the whole domain.

Why pint and not `sympy.physics.units`: answers arrive as text ("3.2 kPa", "26.9 °C",
"4.1e-3 mol/L"), and pint parses unit strings, converts offset temperatures (°C to K) and
raises on a dimension mismatch; sympy's units have no unit-string parser and treat °C as a
plain scale. Sympy keeps the laws (symbolic answers); pint evaluates them with units.
Magnitudes are float64: an answer is exact to ~1e-15 relative, far inside any tolerance.
"""

from __future__ import annotations

import math
from typing import Any

import pint

__all__ = ["UREG", "Quantity", "format_number", "quantity", "round_sig", "to_absolute"]

UREG: Any = pint.UnitRegistry()
Quantity = UREG.Quantity


def quantity(value: float, unit: str) -> Any:
    """`value` in `unit` (offset units such as degC are built, not multiplied)."""
    return Quantity(value, UREG.parse_units(unit) if unit else UREG.dimensionless)


def to_absolute(q: Any) -> Any:
    """Offset temperatures in kelvin (products of °C are meaningless); others unchanged."""
    if q.dimensionality == UREG.kelvin.dimensionality:
        return q.to("kelvin")
    return q


def round_sig(x: float, sig: int = 3) -> float:
    """`x` rounded to `sig` significant figures (the value a problem states)."""
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{sig}g}")


def format_number(x: float, sig: int = 4) -> str:
    """Plain notation for ordinary magnitudes, scientific outside 1e-3 .. 1e6."""
    if x != 0 and not 1e-3 <= abs(x) < 1e6:
        return f"{x:.{sig - 1}e}"
    text = f"{x:.{sig}g}"
    return f"{float(text):.{max(0, sig - 1 - math.floor(math.log10(abs(x))))}f}" if x else "0"
