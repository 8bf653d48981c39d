"""The seed families: parametrised problems in mechanics, electricity, thermodynamics, optics
and chemistry. A family is data: its quantities (with units and draw ranges), the law as a
sympy expression over the quantities' names, the steps it takes, and feeders (laws that
derive one of its quantities from others: the harder rewrite's composed step).

A quantity is drawn (`lo`..`hi`, log-uniform when `log`), fixed (`fixed`: a datum the
problem states, e.g. a molar mass), a standard constant (`constant`: g, R, ...) or a
property of a handbook material (`material`: looked up in interaction-enriched tasks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

__all__ = ["FAMILIES", "Family", "Feeder", "Var"]

Valid = Callable[[Mapping[str, float]], bool]


def _always(values: Mapping[str, float]) -> bool:
    del values
    return True


@dataclass(frozen=True)
class Var:
    name: str  # the sympy symbol (and the name a symbolic answer uses)
    text: str  # what it is, in words
    unit: str  # pint unit of the stated value ("" for a pure number)
    lo: float = 0.0
    hi: float = 0.0
    log: bool = False
    fixed: float | None = None
    constant: str | None = None  # a key of handbook.CONSTANTS
    material: str | None = None  # a key of handbook.PROPERTIES

    @property
    def drawn(self) -> bool:
        """A free parameter (not a constant, a fixed datum or a material property)."""
        return self.fixed is None and self.constant is None and self.material is None


@dataclass(frozen=True)
class Feeder:
    """Derives `replaces` from new quantities: one more step for the solver."""

    replaces: str
    variables: tuple[Var, ...]
    expr: str
    law: str
    sentence: str


@dataclass(frozen=True)
class Family:
    name: str
    topic: str
    setting: str  # may name the material as {material}
    variables: tuple[Var, ...]
    target: str  # what is asked, in words
    symbol: str  # its symbol
    unit: str  # the unit the answer is asked in
    expr: str  # the law: target = expr(variables)
    laws: tuple[str, ...]  # one per reasoning step
    feeders: tuple[Feeder, ...] = ()
    valid: Valid = field(default=_always)

    def var(self, name: str) -> Var:
        return next(v for v in self.variables if v.name == name)


_G = Var("g", "gravitational acceleration", "m/s**2", constant="g")
_R = Var("R", "molar gas constant", "J/(mol*K)", constant="R")

MECHANICS = (
    Family(
        "projectile",
        "mechanics",
        "A projectile is launched from level ground and lands at the same height; air "
        "resistance is negligible.",
        (
            Var("v_0", "launch speed", "m/s", 5, 40),
            Var("theta", "launch angle above the horizontal", "degree", 15, 75),
            _G,
        ),
        "the horizontal range",
        "x_R",
        "m",
        "v_0**2*sin(2*theta)/g",
        ("time of flight t = 2 v_0 sin(theta) / g", "range x_R = v_0 cos(theta) t"),
        (
            Feeder(
                "v_0",
                (
                    Var("E_k", "kinetic energy at launch", "J", 10, 2000),
                    Var("m", "mass of the projectile", "kg", 0.1, 5),
                ),
                "sqrt(2*E_k/m)",
                "kinetic energy E_k = m v_0^2 / 2",
                "The launch speed is not given: it follows from the launch kinetic energy.",
            ),
        ),
    ),
    Family(
        "spring",
        "mechanics",
        "A block rests on a frictionless horizontal surface against a spring compressed by "
        "x; the spring is released and pushes the block off.",
        (
            Var("m", "mass of the block", "kg", 0.2, 5),
            Var("k", "spring constant", "N/m", 50, 2000),
            Var("x", "compression of the spring", "m", 0.02, 0.3),
        ),
        "the speed of the block after it leaves the spring",
        "v",
        "m/s",
        "x*sqrt(k/m)",
        ("elastic energy k x^2 / 2", "energy conservation k x^2 / 2 = m v^2 / 2"),
        (
            Feeder(
                "m",
                (
                    Var(
                        "rho",
                        "density of the block's material, {material}",
                        "kg/m**3",
                        material="density",
                    ),
                    Var("V_b", "volume of the block", "cm**3", 50, 2000),
                ),
                "rho*V_b",
                "mass m = rho V_b",
                "The block's mass is not given: it is made of {material}.",
            ),
        ),
    ),
    Family(
        "incline",
        "mechanics",
        "A crate slides down a rough inclined plane.",
        (
            Var("theta", "inclination of the plane", "degree", 20, 60),
            Var("mu", "coefficient of kinetic friction", "", 0.05, 0.5),
            _G,
        ),
        "the acceleration of the crate along the plane",
        "a",
        "m/s**2",
        "g*(sin(theta) - mu*cos(theta))",
        (
            "forces along the plane m g sin(theta) - mu m g cos(theta)",
            "Newton's second law a = F / m",
        ),
        (
            Feeder(
                "theta",
                (
                    Var("h", "height the plane rises", "m", 0.5, 5),
                    Var("L", "horizontal run of the plane", "m", 1, 8),
                ),
                "atan(h/L)",
                "inclination theta = atan(h / L)",
                "The inclination is not given: the plane rises h over a horizontal run L.",
            ),
        ),
        valid=lambda v: _tan(v["theta"]) > v["mu"] + 0.05,
    ),
)

ELECTRICITY = (
    Family(
        "resistors",
        "electricity",
        "A battery drives a circuit in which R_1 is in series with the parallel pair R_2, R_3.",
        (
            Var("V", "battery voltage", "V", 3, 48),
            Var("R_1", "resistance R_1", "ohm", 2, 200),
            Var("R_2", "resistance R_2", "ohm", 2, 200),
            Var("R_3", "resistance R_3", "ohm", 2, 200),
        ),
        "the current drawn from the battery",
        "I",
        "A",
        "V/(R_1 + R_2*R_3/(R_2 + R_3))",
        (
            "parallel pair R_23 = R_2 R_3 / (R_2 + R_3)",
            "series R_eq = R_1 + R_23",
            "Ohm's law I = V / R_eq",
        ),
    ),
    Family(
        "rc",
        "electricity",
        "A charged capacitor C discharges through a resistor R, starting at t = 0.",
        (
            Var("V_0", "initial capacitor voltage", "V", 5, 100),
            Var("R", "resistance", "kohm", 1, 50),
            Var("C", "capacitance", "uF", 10, 200),
            Var("t", "elapsed time", "ms", 5, 500),
        ),
        "the capacitor voltage at time t",
        "V_C",
        "V",
        "V_0*exp(-t/(R*C))",
        ("time constant tau = R C", "discharge V_C = V_0 exp(-t / tau)"),
        (
            Feeder(
                "V_0",
                (Var("Q_0", "initial charge on the capacitor", "uC", 100, 10000),),
                "Q_0/C",
                "capacitor V_0 = Q_0 / C",
                "The initial voltage is not given: the capacitor starts with charge Q_0.",
            ),
        ),
        valid=lambda v: v["V_0"] <= 1000,
    ),
    Family(
        "wire",
        "electricity",
        "A straight wire of circular cross-section is made of {material}.",
        (
            Var("rho", "electrical resistivity of {material}", "ohm*m", material="resistivity"),
            Var("L", "length of the wire", "m", 0.5, 50),
            Var("d", "diameter of the wire", "mm", 0.1, 2),
        ),
        "the resistance of the wire",
        "R_w",
        "ohm",
        "4*rho*L/(pi*d**2)",
        ("cross-section A = pi d^2 / 4", "resistance R_w = rho L / A"),
    ),
)

THERMODYNAMICS = (
    Family(
        "calorimetry",
        "thermodynamics",
        "A hot block of {material} is dropped into water in an insulated container with "
        "negligible heat capacity; nothing boils.",
        (
            Var("m_1", "mass of the block", "kg", 0.05, 1),
            Var(
                "c_1", "specific heat capacity of {material}", "J/(kg*K)", material="specific_heat"
            ),
            Var("T_1", "initial temperature of the block", "degC", 60, 300),
            Var("m_2", "mass of the water", "kg", 0.1, 2),
            Var("c_w", "specific heat capacity of water", "J/(kg*K)", constant="c_w"),
            Var("T_2", "initial temperature of the water", "degC", 5, 30),
        ),
        "the final common temperature",
        "T_f",
        "degC",
        "(m_1*c_1*T_1 + m_2*c_w*T_2)/(m_1*c_1 + m_2*c_w)",
        (
            "heat lost by the block m_1 c_1 (T_1 - T_f)",
            "heat gained by the water m_2 c_w (T_f - T_2)",
            "energy balance: heat lost = heat gained, solved for T_f",
        ),
        valid=lambda v: (
            v["m_1"] * v["c_1"] * (v["T_1"] - 100) < v["m_2"] * 4186 * (100 - v["T_2"])
        ),  # the water stays below boiling
    ),
    Family(
        "isothermal",
        "thermodynamics",
        "An ideal gas expands isothermally and reversibly at temperature T.",
        (
            Var("n", "amount of gas", "mol", 0.1, 5),
            Var("T", "temperature", "K", 250, 600),
            Var("V_1", "initial volume", "L", 1, 20),
            Var("V_2", "final volume", "L", 21, 60),
            _R,
        ),
        "the work done by the gas",
        "W",
        "J",
        "n*R*T*log(V_2/V_1)",
        ("ideal gas p = n R T / V", "work W = integral of p dV = n R T ln(V_2 / V_1)"),
        (
            Feeder(
                "n",
                (Var("p_1", "initial pressure", "kPa", 50, 500),),
                "p_1*V_1/(R*T)",
                "ideal gas law n = p_1 V_1 / (R T)",
                "The amount of gas is not given: its initial pressure is.",
            ),
        ),
    ),
    Family(
        "carnot",
        "thermodynamics",
        "A reversible (Carnot) engine runs between a hot and a cold reservoir.",
        (
            Var("Q_h", "heat taken from the hot reservoir", "kJ", 1, 100),
            Var("T_h", "hot reservoir temperature", "K", 400, 1200),
            Var("T_c", "cold reservoir temperature", "K", 250, 350),
        ),
        "the work the engine delivers",
        "W",
        "kJ",
        "Q_h*(1 - T_c/T_h)",
        ("Carnot efficiency eta = 1 - T_c / T_h", "work W = eta Q_h"),
        (
            Feeder(
                "Q_h",
                (
                    Var("P_h", "heating power drawn from the hot reservoir", "kW", 1, 50),
                    Var("t", "running time", "s", 10, 300),
                ),
                "P_h*t",
                "heat Q_h = P_h t",
                "The heat taken is not given: the engine draws a steady power for a time t.",
            ),
        ),
    ),
)

OPTICS = (
    Family(
        "lens",
        "optics",
        "An object stands on the axis of a thin converging lens, farther than its focal length.",
        (
            Var("f", "focal length", "cm", 5, 50),
            Var("d_o", "object distance", "cm", 8, 250),
        ),
        "the image distance",
        "d_i",
        "cm",
        "f*d_o/(d_o - f)",
        ("thin lens 1/f = 1/d_o + 1/d_i", "solve for d_i = f d_o / (d_o - f)"),
        (
            Feeder(
                "f",
                (
                    Var(
                        "n",
                        "refractive index of the lens material, {material}",
                        "",
                        material="refractive_index",
                    ),
                    Var("r", "radius of curvature of both faces", "cm", 5, 60),
                ),
                "r/(2*(n - 1))",
                "lensmaker (symmetric biconvex) 1/f = 2 (n - 1) / r",
                "The focal length is not given: the lens is biconvex, made of {material}.",
            ),
        ),
        valid=lambda v: v["d_o"] > 1.2 * v["f"],
    ),
    Family(
        "snell",
        "optics",
        "A ray of light passes from air (refractive index 1) into a flat block of {material}.",
        (
            Var("n", "refractive index of {material}", "", material="refractive_index"),
            Var("theta_1", "angle of incidence from the normal", "degree", 10, 80),
        ),
        "the angle of refraction from the normal",
        "theta_2",
        "degree",
        "asin(sin(theta_1)/n)",
        ("Snell's law sin(theta_1) = n sin(theta_2)", "theta_2 = asin(sin(theta_1) / n)"),
    ),
)

CHEMISTRY = (
    Family(
        "stoichiometry",
        "chemistry",
        "Limestone is heated until it decomposes completely: CaCO3 -> CaO + CO2.",
        (
            Var("m", "mass of CaCO3", "g", 1, 500),
            Var("M_r", "molar mass of CaCO3", "g/mol", fixed=100.086),
            Var("M_p", "molar mass of CO2", "g/mol", fixed=44.009),
        ),
        "the mass of CO2 released",
        "m_CO2",
        "g",
        "m*M_p/M_r",
        (
            "amount n = m / M_r",
            "one mole of CO2 per mole of CaCO3",
            "mass m_CO2 = n M_p",
        ),
    ),
    Family(
        "gas",
        "chemistry",
        "A rigid tank holds nitrogen gas (N2), treated as an ideal gas.",
        (
            Var("m", "mass of nitrogen", "g", 1, 50),
            Var("M", "molar mass of N2", "g/mol", fixed=28.014),
            Var("V", "volume of the tank", "L", 1, 50),
            Var("T", "temperature", "K", 250, 500),
            _R,
        ),
        "the pressure in the tank",
        "p",
        "kPa",
        "m*R*T/(M*V)",
        ("amount n = m / M", "ideal gas law p = n R T / V"),
        (
            Feeder(
                "V",
                (
                    Var("r", "inner radius of the cylindrical tank", "cm", 5, 30),
                    Var("h", "inner height of the tank", "cm", 20, 150),
                ),
                "pi*r**2*h",
                "cylinder volume V = pi r^2 h",
                "The tank's volume is not given: it is a cylinder of radius r and height h.",
            ),
        ),
    ),
    Family(
        "equilibrium",
        "chemistry",
        "A weak monoprotic acid HA is dissolved in water: HA <=> H+ + A-.",
        (
            Var("K_a", "acid dissociation constant", "mol/L", 1e-6, 1e-3, log=True),
            Var("c", "initial concentration of HA", "mol/L", 0.001, 0.5, log=True),
            Var("c0", "standard concentration", "mol/L", constant="c0"),
        ),
        "the pH of the solution (exact, without the small-x approximation)",
        "pH",
        "",
        "-log((-K_a + sqrt(K_a**2 + 4*K_a*c))/(2*c0), 10)",
        (
            "equilibrium K_a = x^2 / (c - x) with x = [H+]",
            "quadratic x = (-K_a + sqrt(K_a^2 + 4 K_a c)) / 2",
            "pH = -log10(x / c0)",
        ),
    ),
)

FAMILIES: dict[str, Family] = {
    f.name: f for f in (*MECHANICS, *ELECTRICITY, *THERMODYNAMICS, *OPTICS, *CHEMISTRY)
}


def _tan(degrees: float) -> float:
    return math.tan(math.radians(degrees))
