"""The molecules domain: RDKit tools on known molecules, the pool, the proposer, the scripted
expert through the real harness, the verifier, the held-out split and the registration."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import random
import re
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import Status, Task, Trajectory
from longhorizon.core.messages import FunctionCall, Message, ToolCall
from longhorizon.core.provenance import RunProvenance
from longhorizon.domains import MOLECULES, registry
from longhorizon.domains.molecules import (
    MoleculesLevel,
    Pool,
    build_pool,
    check_answer,
    expected,
    expert_script,
    guess_without_tools,
    heldout_tasks,
    is_heldout,
    load_into_kag,
    propose_task,
    verify,
)
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.kag import KnowledgeActionGraph, NodeType
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.chem import AFFINITY_FORMULA, ChemError, canonical, properties
from longhorizon.tools.types import ToolContext

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
SALICYLIC = "OC(=O)c1ccccc1O"
LEVEL = MoleculesLevel(pool_size=400)


@pytest.fixture(scope="module")
def pool() -> Pool:
    return build_pool(400, 0)


def call(name: str, **arguments: object) -> tuple[str, str | None, list[str]]:
    """(content, error, refs) of one tool call through the ToolSet, as the harness makes it."""
    toolset = build_toolset([name])
    action = ToolCall(id="c", function=FunctionCall(name=name, arguments=json.dumps(arguments)))
    ctx = ToolContext(episode_id="e", workdir=Path("."))
    result = asyncio.run(toolset.execute(action, ctx))
    return result.content, result.error, result.refs


# ---- the tools ---------------------------------------------------------------------------------


def test_descriptors_of_aspirin_are_rdkits_values() -> None:
    content, error, refs = call("descriptors", smiles=ASPIRIN)
    assert error is None and refs == [f"mol:{ASPIRIN}"]
    data = json.loads(content)
    assert {k: data[k] for k in ("MW", "logP", "TPSA", "HBD", "HBA", "RotB", "QED")} == {
        "MW": 180.16,
        "logP": 1.31,
        "TPSA": 63.6,
        "HBD": 1,
        "HBA": 3,
        "RotB": 2,
        "QED": 0.55,
    }
    exact = properties(ASPIRIN)
    assert exact["MW"] == pytest.approx(180.159) and exact["logP"] == pytest.approx(1.3101)
    assert (exact["HeavyAtoms"], exact["AromaticRings"]) == (13, 1)


def test_canonicalize_and_bad_smiles_are_clear_errors() -> None:
    content, error, refs = call("canonicalize", smiles="CN1C=NC2=C1C(=O)N(C(=O)N2C)C")
    assert json.loads(content) == {"canonical": "Cn1c(=O)c2c(ncn2C)n(C)c1=O"} and error is None
    for name in ("canonicalize", "descriptors", "rule_filter", "affinity_proxy"):
        content, error, refs = call(name, smiles="C1CC(")
        assert content.startswith("Error: invalid SMILES 'C1CC(': RDKit cannot parse it")
        assert error is not None and refs == []
    content, error, _ = call("similarity", smiles_a=ASPIRIN, smiles_b="Xx")
    assert error is not None and "invalid SMILES 'Xx'" in content
    with pytest.raises(ChemError):
        canonical("")


def test_substructure_smarts_and_smiles_patterns() -> None:
    acid = json.loads(call("substructure", smiles="OC(=O)CCC(=O)O", pattern="C(=O)[OX2H1]")[0])
    assert (acid["match"], acid["count"]) == (True, 2)
    ring = json.loads(call("substructure", smiles=ASPIRIN, pattern="c1ccccc1", kind="smiles")[0])
    assert ring["match"] is True
    none = json.loads(call("substructure", smiles=ASPIRIN, pattern="[Cl,Br]")[0])
    assert (none["match"], none["count"]) == (False, 0)
    content, error, _ = call("substructure", smiles=ASPIRIN, pattern="C(=O")
    assert error is not None and "invalid SMARTS pattern 'C(=O'" in content


def test_tanimoto_states_radius_and_bits() -> None:
    data = json.loads(call("similarity", smiles_a=ASPIRIN, smiles_b=SALICYLIC)[0])
    assert data["tanimoto"] == round(13 / 29, 4)  # 13 shared of 29 set bits
    assert data["fingerprint"] == "Morgan radius 2, 2048 bits"
    same = json.loads(call("similarity", smiles_a=ASPIRIN, smiles_b="OC(=O)c1ccccc1OC(C)=O")[0])
    assert same["tanimoto"] == 1.0
    other = json.loads(call("similarity", smiles_a=ASPIRIN, smiles_b=SALICYLIC, radius=3)[0])
    assert other["fingerprint"] == "Morgan radius 3, 2048 bits"
    _, error, refs = call("similarity", smiles_a=ASPIRIN, smiles_b=SALICYLIC, radius=9)
    assert error is not None and refs == []


def test_rule_filters() -> None:
    data = json.loads(call("rule_filter", smiles=ASPIRIN, rule="lipinski")[0])
    assert data["passes"] is True and [c["property"] for c in data["criteria"]] == [
        "MW",
        "logP",
        "HBD",
        "HBA",
    ]
    erythromycin = (
        "CCC1C(C(C(N(CC(CC(C(C(C(C(C(=O)O1)C)OC2CC(C(C(O2)C)O)(C)OC)C)OC3C(C(CC(O3)C)N(C)C)O)"
        "(C)O)C)C)C)O)(C)O"
    )
    big = json.loads(call("rule_filter", smiles=erythromycin, rule="lipinski")[0])
    assert big["passes"] is False
    assert [c["property"] for c in big["criteria"] if not c["ok"]] == ["MW", "HBA"]
    veber = json.loads(call("rule_filter", smiles=erythromycin, rule="veber")[0])
    assert veber["passes"] is False and veber["criteria"][1]["value"] == 180.08  # TPSA
    _, error, _ = call("rule_filter", smiles=ASPIRIN, rule="ghose")
    assert error is not None


def test_affinity_proxy_is_the_documented_formula() -> None:
    data = json.loads(call("affinity_proxy", smiles=ASPIRIN)[0])
    p = properties(ASPIRIN)
    by_hand = (
        0.9 * min(max(p["logP"], -1), 5)
        + 0.5 * p["AromaticRings"]
        + 0.3 * min(p["HBD"], 3)
        + 0.15 * min(p["HBA"], 8)
        - 0.2 * p["RotB"]
        - 0.01 * p["TPSA"]
        + 2.0 * p["QED"]
    )
    assert data["score"] == round(by_hand, 3) == 2.493
    spec = build_toolset(["affinity_proxy"]).specs()[0]
    assert AFFINITY_FORMULA in " ".join(spec.description.split())
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert AFFINITY_FORMULA in readme


# ---- the pool and the proposer -----------------------------------------------------------------


def test_pool_is_seeded_valid_and_split(pool: Pool) -> None:
    assert build_pool.__wrapped__(400, 0) == pool  # type: ignore[attr-defined]
    assert build_pool.__wrapped__(400, 1).smiles != pool.smiles  # type: ignore[attr-defined]
    assert len(pool.smiles) == 400 == len(set(pool.smiles))
    assert all(canonical(s) == s for s in pool.smiles)
    assert set(pool.train).isdisjoint(pool.heldout) and pool.heldout
    assert set(pool.train) | set(pool.heldout) == set(pool.smiles)


@pytest.mark.usefixtures("benchmarks")
def test_pool_shares_no_molecule_with_molbench(benchmarks: Path) -> None:
    bench: set[str] = set()
    for path in sorted((benchmarks / "molbench").glob("*.csv")):
        with path.open(encoding="utf-8-sig", newline="") as f:
            for row in csv.DictReader(f):
                for word in re.findall(r"\S+", " ".join(row.values())):
                    with contextlib.suppress(ChemError):
                        bench.add(canonical(word))
    assert len(bench) > 500
    assert bench.isdisjoint(build_pool(3000, 0).smiles)


def _tasks(pool: Pool, seed: int, n: int = 30) -> list[Task]:
    rng = random.Random(seed)
    drawn = (propose_task(pool, rng, LEVEL, seed=seed) for _ in range(10 * n))
    return [t for t in drawn if t is not None][:n]


def test_proposer_is_deterministic_and_tasks_are_well_formed(pool: Pool) -> None:
    tasks = _tasks(pool, 3)
    assert [t.model_dump(exclude={"provenance"}) for t in _tasks(pool, 3)] == [
        t.model_dump(exclude={"provenance"}) for t in tasks
    ]
    assert [t.id for t in _tasks(pool, 4)] != [t.id for t in tasks]
    assert {t.metadata["kind"] for t in tasks} == {"filter", "rank", "pair"}
    for task in tasks:
        shown = task.metadata["molecules"]
        assert all(s in task.instruction for s in shown) and not any(map(is_heldout, shown))
        assert task.answer == "\n".join(expected(task))
        assert [v.name for v in task.verifiers] == ["molecule_answer", "molecules_examined"]
        if task.metadata["kind"] == "filter":
            n = len(task.metadata["constraints"])
            assert LEVEL.constraints[0] <= n <= LEVEL.constraints[1]
            assert 0 < len(expected(task)) < len(shown)
            assert LEVEL.set_size[0] <= len(shown) <= LEVEL.set_size[1]


def test_levels_set_the_dials(pool: Pool) -> None:
    level = MoleculesLevel(
        pool_size=400, constraints=(4, 4), set_size=(6, 6), kind_weights=(1, 0, 0)
    )
    rng = random.Random(0)
    tasks = [t for t in (propose_task(pool, rng, level) for _ in range(200)) if t is not None]
    assert tasks and all(len(t.metadata["constraints"]) == 4 for t in tasks)
    assert all(len(t.metadata["molecules"]) == 6 for t in tasks)
    assert level.tool_steps() == 19 and MOLECULES.required_turns(level) == 20
    with pytest.raises(ValueError, match="set_size"):
        MoleculesLevel(set_size=(2, 3))


# ---- the verifier ------------------------------------------------------------------------------


def answered(task: Task, answer: str | None) -> Trajectory:
    return Trajectory(
        id=f"{task.id}/t",
        task_id=task.id,
        domain=task.domain,
        final_answer=answer,
        provenance=RunProvenance(model="scripted", backend="scripted"),
    )


def test_verifier_recomputes_and_rejects_wrong_answers(pool: Pool) -> None:
    for task in _tasks(pool, 5, 12):
        want = expected(task)
        assert check_answer(task, "\n".join(want)).passed
        rewritten = "\n".join(_rewrite(s) for s in want)
        assert check_answer(task, rewritten).passed  # the same molecules written differently
        others = [s for s in task.metadata["molecules"] if s not in want]
        wrong = "\n".join([*want[:-1], others[0]]) if others else "C"
        assert not check_answer(task, wrong).passed
        assert not check_answer(task, "C1CC(").passed
        assert not check_answer(task, None).passed
        stored = task.model_copy(update={"answer": wrong})  # the stored answer is not trusted
        assert check_answer(stored, "\n".join(want)).passed
        verdicts = verify(task, answered(task, "\n".join(want)))
        assert [(v.verifier, v.passed) for v in verdicts] == [
            ("molecule_answer", True),
            ("molecules_examined", False),  # no tool examined anything
        ]


def _rewrite(smiles: str) -> str:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return str(Chem.MolToSmiles(mol, rootedAtAtom=mol.GetNumAtoms() - 1, canonical=False))


def test_rank_order_matters_and_filter_order_does_not(pool: Pool) -> None:
    tasks = _tasks(pool, 6, 40)
    rank = next(t for t in tasks if t.metadata["kind"] == "rank")
    assert not check_answer(rank, "\n".join(reversed(expected(rank)))).passed
    multi = next(t for t in tasks if t.metadata["kind"] == "filter" and len(expected(t)) > 1)
    assert check_answer(multi, "\n".join(reversed(expected(multi)))).passed
    assert not check_answer(multi, "\n".join(expected(multi) * 2)).passed  # duplicates


def test_guesser_lists_without_tools(pool: Pool) -> None:
    for task in _tasks(pool, 7, 20):
        guess = guess_without_tools([Message(role="user", content=task.instruction)])
        lines = re.search(r"<answer>(.*)</answer>", guess, re.S).group(1).split()  # type: ignore[union-attr]
        shown = task.metadata["molecules"]
        if task.metadata["kind"] == "filter":
            assert lines == shown and not check_answer(task, "\n".join(lines)).passed
        else:
            assert len(lines) == (1 if task.metadata["kind"] == "pair" else 3)
            assert set(lines) <= set(shown)


# ---- the expert through the real harness -------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def run_expert(
    tasks: list[Task], renderer: ChatRenderer, tmp_path: Path, error_rate: float = 0.0
) -> list[Trajectory]:
    async def run_all() -> list[Trajectory]:
        out = []
        for task in tasks:
            runner = EpisodeRunner(
                ScriptedAgent(renderer, expert_script(task, error_rate=error_rate, seed=1)),
                lambda t: build_toolset(t.protocol.tools),
                HarnessConfig(workdir=tmp_path / "work"),
                verify=MOLECULES.verify,
            )
            out.append(await runner.run(task, task.id))
        return out

    return asyncio.run(run_all())


def test_expert_solves_its_tasks_and_the_verifier_accepts(
    pool: Pool, renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = _tasks(pool, 8, 9)
    for task, traj in zip(tasks, run_expert(tasks, renderer, tmp_path), strict=True):
        assert traj.status is Status.COMPLETED, traj.status_reason
        assert traj.passed and all(v.passed for v in traj.verdicts), traj.verdicts
        assert all(s.error is None for s in traj.steps)
        assert len(traj.steps) >= len(task.metadata["molecules"])
        assert traj.token_sequences()  # the episode's tokens, as the renderer made them


def test_expert_mistakes_are_recovered_or_rejected(
    pool: Pool, renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = _tasks(pool, 9, 16)
    experts = [expert_script(t, error_rate=1.0, seed=1) for t in tasks]
    kinds = [e.mistake[0] for e in experts if e.mistake]
    assert set(kinds) == {"typo", "skip_last"}
    for expert, traj in zip(
        experts, run_expert(tasks, renderer, tmp_path, error_rate=1.0), strict=True
    ):
        assert traj.status is Status.COMPLETED
        if expert.mistake and expert.mistake[0] == "typo":  # an error step, then the retry
            assert traj.passed and sum(s.error is not None for s in traj.steps) == 1
            assert "invalid SMILES" in next(s.observation for s in traj.steps if s.error)
        else:
            assert not traj.passed
            assert not next(v for v in traj.verdicts if v.verifier == "molecules_examined").passed


# ---- held-out split, KAG, registration ---------------------------------------------------------


def test_heldout_split_is_disjoint_and_deterministic(pool: Pool) -> None:
    held = heldout_tasks(pool, LEVEL, 12, 1_000_000)
    assert [t.id for t in heldout_tasks(pool, LEVEL, 6, 1_000_000)] == [t.id for t in held[:6]]
    assert [t.metadata["kind"] for t in held[:3]] == ["filter", "rank", "pair"]
    shown = {s for t in held for s in t.metadata["molecules"] + [t.metadata.get("reference")] if s}
    assert shown <= set(pool.heldout)
    train = {s for t in _tasks(pool, 0, 40) for s in t.metadata["molecules"]}
    assert shown.isdisjoint(train) and not {t.id for t in held} & {t.id for t in _tasks(pool, 0)}


def test_kag_holds_molecules_properties_constraints_and_tools(pool: Pool, tmp_path: Path) -> None:
    kag = KnowledgeActionGraph(tmp_path / "kag.db")
    load_into_kag(pool, kag)
    node = kag.node(f"mol:{pool.smiles[0]}")
    assert node is not None and node.type is NodeType.ENTITY
    assert node.payload["MW"] == pytest.approx(properties(pool.smiles[0])["MW"])
    for node_id, kind in [
        ("property:TPSA", NodeType.FACT),
        ("tool:descriptors", NodeType.TOOL),
        ("rule:lipinski", NodeType.CONSTRAINT),
        ("substructure:a carboxylic acid", NodeType.CONSTRAINT),
        ("threshold:MW", NodeType.CONSTRAINT),
    ]:
        found = kag.node(node_id)
        assert found is not None and found.type is kind, node_id


def test_molecules_is_registered_with_its_bench() -> None:
    assert registry.get("molecules") is MOLECULES
    assert MOLECULES.bench == "molecules-heldout"
    assert registry.by_bench("molecules-heldout") is MOLECULES
    assert MOLECULES.tools == (
        "canonicalize",
        "descriptors",
        "substructure",
        "similarity",
        "rule_filter",
        "affinity_proxy",
    )
    assert MOLECULES.parse_level({"pool_size": 400}) == LEVEL
