"""The science domain: seed answers with units (hand-checked), rewrites that keep the answer
consistent, the verifier's tolerance, units and symbolic equivalence, the expert through the
real harness, the held-out split's disjointness, and a short synthesis run."""

from __future__ import annotations

import asyncio
import math
import random
from pathlib import Path
from typing import Any

import pytest
import sympy
from transformers import AutoTokenizer

from longhorizon.core import Status, Task, TaskStore, Trajectory
from longhorizon.domains import registry
from longhorizon.domains.science import (
    FAMILIES,
    SPEC,
    Handbook,
    Problem,
    ScienceLevel,
    answer,
    check_numeric,
    check_symbolic,
    draw_seed,
    evaluate,
    expert_script,
    harder,
    parse_quantity,
    propose_tasks,
    verify_science,
    with_lookup,
    with_python,
)
from longhorizon.domains.science.problems import si_value, symbolic_answer, symbols_of, sympy_expr
from longhorizon.domains.science.spec import propose
from longhorizon.domains.science.units import quantity
from longhorizon.domains.spec import HELDOUT_SEED
from longhorizon.evaluation.heldout import audit
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusIndex

G, R = 9.80665, 8.314462618


@pytest.fixture(scope="module")
def book() -> Handbook:
    return Handbook.generate(20, seed=3)


def problem(family: str, book: Handbook, **values: float) -> Problem:
    spec = FAMILIES[family]
    material = book.materials[0] if any(v.material for v in spec.variables) else None
    constants = {"g": G, "R": R, "c_w": 4186.0, "c0": 1.0, "M_r": 100.086, "M_p": 44.009}
    full = {v.name: values.get(v.name, constants.get(v.name, 28.014)) for v in spec.variables}
    return Problem(family, spec.variables, full, spec.expr, spec.laws, material)


# Values worked by hand (the comment is the arithmetic).
HAND = [
    ("projectile", {"v_0": 10, "theta": 45}, 100 / G),  # v^2 sin 90° / g
    ("spring", {"m": 1, "k": 400, "x": 0.1}, 2.0),  # 0.1 * sqrt(400 / 1)
    ("incline", {"theta": 30, "mu": 0.1}, G * (0.5 - 0.1 * math.sqrt(3) / 2)),
    ("resistors", {"V": 12, "R_1": 4, "R_2": 6, "R_3": 3}, 2.0),  # 12 V / (4 + 2) ohm
    ("rc", {"V_0": 10, "R": 1, "C": 1000, "t": 1000}, 10 / math.e),  # tau = 1 kohm * 1 mF = 1 s
    ("wire", {"rho": 1.68e-8, "L": 10, "d": 1}, 4 * 1.68e-8 * 10 / (math.pi * 1e-6)),  # d in mm
    ("calorimetry", {"m_1": 1, "c_1": 400, "T_1": 100, "m_2": 1, "T_2": 20}, 123720 / 4586),
    ("isothermal", {"n": 1, "T": 300, "V_1": 10, "V_2": 20}, R * 300 * math.log(2)),
    ("carnot", {"Q_h": 10, "T_h": 500, "T_c": 300}, 4.0),  # kJ: 10 * (1 - 3/5)
    ("lens", {"f": 10, "d_o": 30}, 15.0),  # cm: 1/10 - 1/30 = 1/15
    ("snell", {"n": 1.5, "theta_1": 30}, math.degrees(math.asin(1 / 3))),
    ("stoichiometry", {"m": 100.086}, 44.009),  # one mole of CaCO3 gives one of CO2
    ("gas", {"m": 28.014, "V": 10, "T": 300}, R * 300 / 0.01 / 1000),  # 1 mol in 10 L, kPa
    ("equilibrium", {"K_a": 1e-4, "c": 0.01}, -math.log10((-1e-4 + math.sqrt(1e-8 + 4e-6)) / 2)),
]


@pytest.mark.parametrize(("family", "values", "expected"), HAND, ids=[h[0] for h in HAND])
def test_seed_answers_are_unit_correct(
    family: str, values: dict[str, float], expected: float, book: Handbook
) -> None:
    assert answer(problem(family, book, **values)) == pytest.approx(expected, rel=1e-9)


def test_every_family_has_a_hand_checked_value() -> None:
    assert {h[0] for h in HAND} == set(FAMILIES)
    topics = {f.topic for f in FAMILIES.values()}
    assert topics == {"mechanics", "electricity", "thermodynamics", "optics", "chemistry"}


def test_seeds_are_deterministic_in_the_seed(book: Handbook) -> None:
    level = ScienceLevel()
    a, b, c = (
        [t.model_dump(exclude={"provenance"}) for t in propose_tasks(book, 12, level, seed=s)]
        for s in (5, 5, 6)
    )
    assert a == b != c
    assert (
        propose_tasks(book, 5, level, seed=5)[0].id == propose_tasks(book, 12, level, seed=5)[0].id
    )


# ---- rewrites ----------------------------------------------------------------------------------


def seeds(book: Handbook, n: int = 3) -> list[Problem]:
    rng = random.Random(11)
    out = [draw_seed(f, rng, book) for f in FAMILIES.values() for _ in range(n)]
    return [p for p in out if p is not None]


def test_harder_rewrites_recompute_the_answer(book: Handbook) -> None:
    rng = random.Random(0)
    composed = symbolic = unchanged = 0
    for seed in seeds(book):
        rewritten = harder(seed, rng, book, hard_steps=3, symbolic_share=0.5)
        assert rewritten is not None
        if seed.steps >= 3:  # already hard: unchanged
            assert rewritten.unchanged and rewritten.expr == seed.expr
            assert rewritten.values == seed.values
            unchanged += 1
            continue
        assert rewritten.kind == "harder" and rewritten.steps >= seed.steps
        # Independent path: the family's own law at the derived value of the replaced given.
        family = FAMILIES[seed.family]
        direct = evaluate(family.expr, family.variables, rewritten.values, family.unit)
        assert answer(rewritten) == pytest.approx(float(direct.magnitude), rel=1e-9)
        composed += bool(rewritten.composed)
        symbolic += rewritten.symbolic
        if rewritten.symbolic:  # the formula at the stated values (SI) is the numeric answer
            kept = symbols_of(rewritten)
            formula = sympy_expr(symbolic_answer(rewritten), kept)
            at = {
                sympy.Symbol(v.name, positive=True): si_value(v, rewritten.values[v.name])
                for v in rewritten.variables
                if v.name in kept
            }
            si = quantity(answer(rewritten), family.unit).to_base_units().magnitude
            assert float(formula.subs(at)) == pytest.approx(si, rel=1e-9)
    assert composed and symbolic and unchanged


def test_python_rewrite_is_the_mean_over_the_sweep(book: Handbook) -> None:
    rng = random.Random(1)
    for seed in seeds(book, 1):
        rewritten = with_python(seed, rng)
        assert rewritten is not None and rewritten.sweep is not None
        name, points = rewritten.sweep
        assert len(set(points)) == len(points) >= 5
        each = [
            answer(Problem(**{**vars(seed), "values": {**seed.values, name: p}})) for p in points
        ]
        assert answer(rewritten) == pytest.approx(sum(each) / len(each), rel=1e-12)


def test_lookup_rewrite_keeps_the_answer_and_hides_the_value(book: Handbook) -> None:
    rng = random.Random(2)
    for family in ("wire", "calorimetry", "snell"):
        seed = draw_seed(FAMILIES[family], rng, book)
        assert seed is not None and seed.material is not None
        rewritten = with_lookup(seed)
        assert rewritten is not None and answer(rewritten) == answer(seed)
        found = None
        rng_ = random.Random(family)
        while found is None:
            found = propose("lookup", rng_, book, ScienceLevel())
        task = found[0]
        value = task.metadata["subgraph"]["quantities"]
        hidden = next(q for q in value if q["role"] == "looked_up")
        assert f"{hidden['value']:.6g}" not in task.instruction
        assert task.evidence == [task.metadata["subgraph"]["material"]]
    assert with_lookup(draw_seed(FAMILIES["projectile"], rng, book)) is None  # type: ignore[arg-type]


# ---- the verifier ------------------------------------------------------------------------------


NUM = {"value": 299.0, "unit": "K", "rel_tol": 0.01}


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("299 K", True),
        ("25.85 degC", True),  # other units, offset included
        ("25.85 °C", True),
        (r"\boxed{2.99 \times 10^{2}\,\mathrm{K}}", True),
        ("T_f = 301.5 K", True),  # within 1%
        ("299", True),  # a bare number is read in the asked unit
        ("302.5 K", False),  # 1.2% off
        ("2990 K", False),  # wrong magnitude
        ("299 m", False),  # wrong dimension
        ("about three hundred", False),
    ],
)
def test_numeric_tolerance_and_units(text: str, passed: bool) -> None:
    assert check_numeric(text, NUM).passed is passed


def test_numeric_conversions_between_units() -> None:
    speed = {"value": 3.52, "unit": "m/s"}
    assert check_numeric("0.00352 km/s", speed).passed
    assert check_numeric("12.672 km/h", speed).passed
    assert not check_numeric("3.52 km/s", speed).passed
    assert check_numeric("2.11 kohm", {"value": 2110.3, "unit": "ohm"}).passed
    assert check_numeric(r"$16.9^\circ$", {"value": 16.9, "unit": "degree"}).passed
    assert check_numeric("0.29496 rad", {"value": 16.9, "unit": "degree"}).passed
    assert check_numeric("1.2×10^-3 A", {"value": 1.2, "unit": "mA"}).passed
    assert parse_quantity("4.1e-3 mol/L") == (0.0041, "mol/L")


SYM = {"expr": "v_0**2*sin(2*theta)/g", "symbols": ["v_0", "theta", "g"]}


@pytest.mark.parametrize(
    ("text", "passed"),
    [
        ("v_0**2*sin(2*theta)/g", True),
        (r"\frac{2 v_0^2 \sin\theta \cos\theta}{g}", True),  # equivalent, in LaTeX
        (r"\boxed{x_R = \dfrac{v_0^{2}\sin 2\theta}{g}}", True),
        ("v_0^2 sin(theta)/g", False),
        ("2*v_0**2*sin(2*theta)/g", False),
        ("v_0**2*sin(2*theta)/(g*m)", False),  # a symbol the problem does not have
        ("", False),
    ],
)
def test_symbolic_equivalence(text: str, passed: bool) -> None:
    assert check_symbolic(text, SYM).passed is passed


# ---- the expert through the harness ------------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def run_expert(
    book: Handbook, tasks: list[Task], renderer: ChatRenderer, tmp_path: Path, error_rate: float
) -> list[Trajectory]:
    index = CorpusIndex.open(book.write(tmp_path / "handbook"))

    async def run_all() -> list[Trajectory]:
        out = []
        for task in tasks:
            runner = EpisodeRunner(
                ScriptedAgent(renderer, expert_script(task, error_rate=error_rate)),
                lambda t: build_toolset(t.protocol.tools),
                HarnessConfig(workdir=tmp_path / "work"),
                verify=verify_science,
                resources={"corpus_index": index},
            )
            out.append(await runner.run(task, task.id))
        return out

    return asyncio.run(run_all())


def tool_names(traj: Trajectory) -> list[str]:
    return [s.action.function.name for s in traj.steps]


def test_expert_solves_every_kind(book: Handbook, renderer: ChatRenderer, tmp_path: Path) -> None:
    tasks = propose_tasks(book, 12, ScienceLevel(), seed=9, heldout=False)
    assert {t.metadata["kind"] for t in tasks} == {"seed", "harder", "python", "lookup"}
    for task, traj in zip(tasks, run_expert(book, tasks, renderer, tmp_path, 0.0), strict=True):
        assert traj.status is Status.COMPLETED, traj.status_reason
        assert traj.passed, traj.verdicts
        kind = task.metadata["kind"]
        names = tool_names(traj)
        if kind == "lookup":
            assert names[0] == "search" and "visit" in names and names[-1] == "python"
            visited = [
                r for s in traj.steps if s.action.function.name == "visit" for r in s.state_refs
            ]
            assert visited == task.evidence
        elif kind == "python":
            assert names == ["python"]
        else:
            assert names == [] and not task.protocol.tools


def test_expert_slips_fail_the_verifier(
    book: Handbook, renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = propose_tasks(book, 8, ScienceLevel(), seed=10, heldout=False)
    for traj in run_expert(book, tasks, renderer, tmp_path, 1.0):
        assert traj.status is Status.COMPLETED and not traj.passed


# ---- the held-out split and synthesis ----------------------------------------------------------


def test_heldout_is_disjoint_from_synthesis(book: Handbook, tmp_path: Path) -> None:
    level = ScienceLevel()
    proposer_rng = random.Random(0)  # what synthesis draws with its default seed
    train: list[Task] = []
    while len(train) < 300:
        kind = proposer_rng.choice(["seed", "harder", "python", "lookup"])
        found = propose(kind, proposer_rng, book, level)
        if found is not None:
            train.append(found[0])
    held = propose_tasks(book, 100, level, seed=HELDOUT_SEED)
    assert len(held) == 100
    assert {t.metadata["kind"] for t in held} == {"seed", "harder", "python", "lookup"}
    assert not {t.id for t in held} & {t.id for t in train}
    assert not {t.instruction for t in held} & {t.instruction for t in train}
    store = TaskStore(tmp_path / "train")
    for task in train:
        store.add(task)
    store.close()
    kept, report = audit(held, tmp_path / "train")
    reasons = {d.reason for d in report.dropped}
    assert "same id" not in reasons and "same text" not in reasons
    assert len(kept) >= 90, report.summary()


def test_registered_with_its_bench_and_tools() -> None:
    assert registry.get("science") is SPEC
    assert SPEC.bench == "science-heldout" and registry.by_bench("science-heldout") is SPEC
    assert SPEC.tools == ("search", "visit", "python")
    assert SPEC.required_turns(SPEC.parse_level(None)) == 5


def test_synthesis_run_accepts_and_records_subgraphs(tmp_path: Path) -> None:
    from longhorizon.domains import synthesize
    from longhorizon.kag import KnowledgeActionGraph, NodeType

    level: dict[str, Any] = {"materials": 10}
    report = asyncio.run(synthesize(SPEC, 12, tmp_path, level=level, concurrency=4))
    assert report.accepted == 12
    assert set(report.rejected) <= {"invalid"}  # only the expert's slips
    kag = KnowledgeActionGraph(tmp_path / "kag.db")
    seeds_ = kag.nodes("science", NodeType.STATE)
    assert seeds_ and all(n.payload["laws"] and n.payload["quantities"] for n in seeds_)
    kag.close()


def test_two_stage_teacher_data_splits_reasoning_from_tool_traces(tmp_path: Path) -> None:
    """The two-stage science teacher's stages: no-tool traces (seed, harder), then tool traces
    (python, lookup); together they are every trajectory, and no trajectory is in both."""
    from longhorizon.core import TaskStore
    from longhorizon.domains import synthesize
    from longhorizon.training.data import DataConfig, keep_trajectory, load_trajectories

    asyncio.run(synthesize(SPEC, 16, tmp_path, level={"materials": 10}, concurrency=4))
    kinds = {t.id: t.metadata["kind"] for t in TaskStore(tmp_path / "tasks")}
    trajs = list(load_trajectories([tmp_path / "trajectories"]))

    def kept(tool_use: Any) -> set[str]:
        cfg = DataConfig(tool_use=tool_use)
        return {t.task_id for t in trajs if keep_trajectory(t, cfg)}

    reasoning, tools, every = kept("without"), kept("with"), kept("any")
    assert reasoning and tools and not reasoning & tools and reasoning | tools == every
    assert {kinds[t] for t in reasoning} <= {"seed", "harder"}
    assert {kinds[t] for t in tools} <= {"python", "lookup"}
    # at its default the filter stays out of the dump (cached content keys are unchanged)
    assert "tool_use" not in DataConfig().model_dump()
    assert DataConfig(tool_use="with").model_dump()["tool_use"] == "with"
