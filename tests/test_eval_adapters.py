"""Benchmark adapters and `longhorizon eval --model`: MolBench, IFEval, held-out splits, compare."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Message, Task, TaskStore
from longhorizon.domains import HELDOUT_SEED, INSTRUCTION, SEARCH
from longhorizon.domains.instruction import InstructionLevel
from longhorizon.domains.search import SearchLevel
from longhorizon.domains.search.spec import encyclopedia
from longhorizon.evaluation import molbench
from longhorizon.evaluation.compare import compare_dirs
from longhorizon.evaluation.heldout import TrainingIndex, audit, heldout_bench, heldout_tasks
from longhorizon.evaluation.ifeval import METRICS as IFEVAL_METRICS
from longhorizon.evaluation.items import append_items, items_path, read_items
from longhorizon.evaluation.metrics import estimate
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.runner import evaluate_agent
from longhorizon.evaluation.smiles import canonical_smiles, same_molecule
from longhorizon.evaluation.types import BenchResult, ItemResult
from longhorizon.harness import BackendAgent, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.verifiers.ifeval.scorer import load_inputs, load_responses, score_inputs

needs_data = pytest.mark.usefixtures("benchmarks")  # skipped without the data; CI=true: error
QUIET = {"show_progress": False}


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    from transformers import AutoTokenizer

    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


# ---- MolBench ----------------------------------------------------------------------------------


@needs_data
def test_molbench_loads_37_items_with_the_bom_handled() -> None:
    items = molbench.load_items(EvalOptions(), Path(".")).items
    assert len(items) == 37
    assert [i.id for i in items[:2]] == ["bind-000", "bind-001"]
    assert items[0].question.startswith("You are a computational medicinal chemist.")
    assert items[0].target == "Phosphodiesterase 5A"
    for item in items:  # the answer is always one of the two molecules the question shows
        assert set(item.molecules) == {"A", "B"}
        assert item.answer in item.molecules.values()
    assert items[0].prompt.endswith("inside <answer></answer>.")


def test_canonical_smiles_match_and_invalid_smiles_fail() -> None:
    assert canonical_smiles("C(O)C") == canonical_smiles("OCC") == "CCO"
    assert canonical_smiles("C1=CC=CC=C1") == "c1ccccc1"  # Kekulé vs aromatic
    assert same_molecule("OC(=O)c1ccccc1", "c1ccc(cc1)C(O)=O")
    assert not same_molecule("C[C@H](N)C(=O)O", "C[C@@H](N)C(=O)O")  # enantiomers differ
    for invalid in ("C1CC", "C(C", "Xx", "", "   ", None):
        assert canonical_smiles(invalid) is None
        assert not same_molecule(invalid, "CCO")


@needs_data
def test_molbench_scores_equivalent_smiles_written_differently() -> None:
    from rdkit import Chem

    item = molbench.load_items(EvalOptions(), Path(".")).items[1]
    right = next(k for k, s in item.molecules.items() if s == item.answer)
    wrong = "B" if right == "A" else "A"
    rewritten = Chem.MolToSmiles(Chem.MolFromSmiles(item.answer), rootedAtAtom=5)
    assert rewritten != item.answer
    hit = molbench.score_item(item, f"Because...\n<answer>{rewritten}</answer>", 0, {})
    assert (hit.score, hit.prediction, hit.details["chose"]) == (1.0, rewritten, right)
    bare = molbench.score_item(item, f"  {item.molecules[wrong]}\n", 0, {})
    assert (bare.score, bare.details["chose"], bare.details["valid_smiles"]) == (0.0, wrong, True)
    bad = molbench.score_item(item, "<answer>C1CC(</answer>", 0, {})
    assert (bad.score, bad.details["chose"], bad.details["valid_smiles"]) == (0.0, None, False)
    assert molbench.score_item(item, "no idea", 0, {}).score == 0.0


# ---- IFEval ------------------------------------------------------------------------------------


def _ifeval_item(key: int, strict: list[bool], loose: list[bool]) -> ItemResult:
    details = {"strict": strict, "loose": loose}
    return ItemResult(bench="ifeval", item_id=str(key), seed=0, score=all(strict), details=details)


def test_ifeval_metrics_count_prompts_and_instructions() -> None:
    items = [
        _ifeval_item(1, [True, True, False], [True, True, True]),
        _ifeval_item(2, [True], [True]),
        _ifeval_item(3, [False, False], [True, False]),
        _ifeval_item(4, [True, True], [True, True]),
    ]
    values = {m.name: estimate(m, items) for m in IFEVAL_METRICS}
    assert values["prompt_level_strict"].mean == pytest.approx(2 / 4)
    assert values["instruction_level_strict"].mean == pytest.approx(5 / 8)
    assert values["prompt_level_loose"].mean == pytest.approx(3 / 4)
    assert values["instruction_level_loose"].mean == pytest.approx(7 / 8)
    assert values["average_strict"].mean == pytest.approx((2 / 4 + 5 / 8) / 2)
    assert all(v.n == 4 for v in values.values())  # resampled unit: the prompt
    low, high = values["instruction_level_strict"].low, values["instruction_level_strict"].high
    assert 0 <= low < 5 / 8 < high <= 1


@needs_data
def test_ifeval_end_to_end_with_a_tiny_model(
    tiny_llama_path: str, benchmarks: Path, tmp_path: Path
) -> None:
    args = ["eval", "--model", tiny_llama_path, "--bench", "ifeval", "--limit", "5"]
    args += ["--max-tokens", "8", "--batch-size", "4", "--seeds", "2", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pooled" in result.output and "tokens/s" in result.output
    inputs = load_inputs(benchmarks / "ifeval" / "input_data.jsonl")[:5]
    bench_dir = tmp_path / "ifeval"
    summary = BenchResult.load(bench_dir / "result.json")
    assert (summary.bench, summary.seeds, summary.primary) == ("ifeval", [0, 1], "average_strict")
    assert summary.n_items == {0: 5, 1: 5}
    for metric in summary.metrics.values():
        for est in [*metric.per_seed.values(), metric.pooled]:
            assert 0.0 <= est.low <= est.mean <= est.high <= 1.0 and est.n == 5
    for seed in (0, 1):
        items = read_items(items_path(bench_dir, seed))
        assert list(items) == [str(i.key) for i in inputs]
        lines = (bench_dir / f"responses-seed{seed}.jsonl").read_text().splitlines()
        rows = [json.loads(line) for line in lines]
        assert all(set(r) == {"prompt", "response"} for r in rows)  # the official format
        assert [r["prompt"] for r in rows] == [i.prompt for i in inputs]
        report = score_inputs(inputs, load_responses(bench_dir / f"responses-seed{seed}.jsonl"))
        for verdicts, item, row in zip(report.results, items.values(), rows, strict=True):
            assert item.details["strict"] == verdicts.follow_instruction_list_strict
            assert item.prediction == row["response"]
            assert 1 <= item.details["completion_tokens"] <= 8


# ---- resume ------------------------------------------------------------------------------------


@needs_data
def test_resume_skips_finished_items(renderer: ChatRenderer, tmp_path: Path) -> None:
    calls: list[str] = []

    def script(messages: list[Message]) -> str:
        question = messages[-1].content or ""
        calls.append(question)
        a = question.split("Molecule A: ")[1].split()[0]
        return f"<answer>{a}</answer>"  # always molecule A

    agent = ScriptedAgent(renderer, script)

    def run(limit: int) -> BenchResult:
        options = EvalOptions(limit=limit, batch_size=2, **QUIET)
        return asyncio.run(evaluate_agent(agent, "always-a", ["molbench"], 1, tmp_path, options))[
            "molbench"
        ]

    first = run(3)
    path = items_path(tmp_path / "molbench", 0)
    before = path.read_text()
    with path.open("a") as f:
        f.write('{"bench": "molbench", "item_id": "bind-0')  # a torn line, as after a kill
    second = run(5)
    assert len(calls) == 5  # 3, then only the 2 new ones
    assert path.read_text().startswith(before)
    assert len(path.read_text().splitlines()) == 5
    items = molbench.load_items(EvalOptions(limit=5), Path(".")).items
    expected = [float(i.answer == i.molecules["A"]) for i in items]
    assert first.pooled.mean == pytest.approx(sum(expected[:3]) / 3)
    assert second.pooled.mean == pytest.approx(sum(expected) / 5)
    assert second.info["runs"][0]["reused"] == 3 and second.info["runs"][0]["ran"] == 2
    run(5)
    assert len(calls) == 5  # nothing left to do


# ---- held-out splits ---------------------------------------------------------------------------


def _synthesis_draws(propose, n: int) -> list[Task]:  # type: ignore[no-untyped-def]
    """What self-play proposes with its default seed 0 (SelfPlay seeds its rng with it)."""
    rng = random.Random(0)
    return [t for t in (propose(rng) for _ in range(n)) if t is not None]


def _store(tasks: list[Task], root: Path) -> Path:
    store = TaskStore(root)
    store.extend(tasks)
    store.close()
    return root


def instruction_tasks(n: int, seed: int = HELDOUT_SEED) -> list[Task]:
    world = INSTRUCTION.open_world(InstructionLevel(), 0, Path("unused"))
    return heldout_tasks(INSTRUCTION, world, n, seed)


def test_instruction_heldout_is_disjoint_from_synthesis_and_deterministic(tmp_path: Path) -> None:
    from longhorizon.domains.instruction import InstructionProposer

    training = _synthesis_draws(InstructionProposer().propose, 40)
    held = instruction_tasks(12)
    assert [t.id for t in instruction_tasks(12)] == [t.id for t in held]
    assert [t.id for t in instruction_tasks(6)] == [t.id for t in held[:6]]
    assert not {t.id for t in training} & {t.id for t in held}
    kept, report = audit(held, _store(training, tmp_path / "train"))
    assert (report.train_tasks, report.generated, report.kept) == (len(training), 12, 12)
    assert report.dropped == [] and kept == held
    # Templates: most prompts share some 13-gram with training, which the strict rule drops.
    assert report.shared_ngram_items > 0
    _, strict = audit(held, tmp_path / "train", rule="any-13gram")
    assert len(strict.dropped) == report.shared_ngram_items
    with pytest.raises(ValueError, match="held-out seeds start at 1,000,000"):
        instruction_tasks(3, seed=7)


def test_search_heldout_is_disjoint_after_the_audit(tmp_path: Path) -> None:
    from longhorizon.domains.search import SearchProposer

    world = SEARCH.open_world(SearchLevel(entities=300), 0, tmp_path / "world")
    training = _synthesis_draws(SearchProposer(encyclopedia(300, 0), seed=0).propose, 120)
    held = heldout_tasks(SEARCH, world, 30)
    assert [t.id for t in heldout_tasks(SEARCH, world, 30)] == [t.id for t in held]
    planted = held[3]  # a training task that a held-out draw repeats must be dropped
    kept, report = audit(held, _store([*training, planted], tmp_path / "train"))
    assert planted.id in {d.item_id for d in report.dropped}
    assert report.kept == len(kept) == 30 - len(report.dropped)
    index = TrainingIndex([*training, planted])
    for task in kept:  # nothing kept repeats a training task, by id, text or 13-grams
        assert task.id not in index.ids
        assert index.drop_reason(task, "near-duplicate", 0.9) is None
        assert index.nearest(task.instruction)[1] < 0.9


# ---- held-out search through the harness -------------------------------------------------------


def _expert_agent(renderer: ChatRenderer, tasks: list[Task], world) -> ScriptedAgent:  # type: ignore[no-untyped-def]
    """One scripted expert per task, picked by the question the episode asks."""
    from longhorizon.domains.search import expert_script

    experts = {t.instruction: expert_script(t, world) for t in tasks}

    def script(messages: list[Message]):  # type: ignore[no-untyped-def]
        question = next(m.content for m in messages if m.role == "user")
        return experts[question](messages)

    return ScriptedAgent(renderer, script, "search-expert")


def test_search_heldout_expert_passes_and_a_random_model_fails(
    renderer: ChatRenderer, tiny_backend, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    levels = {"search": {"entities": 300}}
    options = EvalOptions(limit=3, levels=levels, batch_size=3, **QUIET)
    tasks = heldout_bench(SEARCH).load_items(options, tmp_path).items
    world = encyclopedia(300, 0)
    expert = _expert_agent(renderer, tasks, world)
    out = tmp_path / "expert"
    result = asyncio.run(evaluate_agent(expert, "expert", ["search-heldout"], 1, out, options))
    est = result["search-heldout"].pooled
    assert (est.mean, est.n) == (1.0, 3)
    items = read_items(items_path(out / "search-heldout", 0))
    assert all(
        i.details["verdicts"] == {"exact_match": True, "evidence_path": True}
        for i in items.values()
    )
    assert all(i.details["tool_calls"] >= 4 for i in items.values())

    small = EvalOptions(
        limit=2, levels=levels, max_turns=2, max_tokens=8, max_context_tokens=3000, **QUIET
    )
    random_model = BackendAgent(tiny_backend)
    out = tmp_path / "tiny"
    result = asyncio.run(evaluate_agent(random_model, "tiny", ["search-heldout"], 1, out, small))
    est = result["search-heldout"].pooled
    assert (est.mean, est.n) == (0.0, 2)


def test_instruction_heldout_expert_passes(renderer: ChatRenderer, tmp_path: Path) -> None:
    from longhorizon.domains.instruction import expert_script

    options = EvalOptions(limit=4, **QUIET)
    tasks = heldout_bench(INSTRUCTION).load_items(options, tmp_path).items
    experts = {t.instruction: expert_script(t) for t in tasks}

    def script(messages: list[Message]):  # type: ignore[no-untyped-def]
        question = next(m.content for m in messages if m.role == "user")
        return experts[question](messages)

    agent = ScriptedAgent(renderer, script, "instruction-expert")
    run = evaluate_agent(agent, "expert", ["instruction-heldout"], 1, tmp_path, options)
    pooled = asyncio.run(run)["instruction-heldout"].pooled
    assert (pooled.mean, pooled.n) == (1.0, 4)


def test_instruction_level_flag_reaches_the_heldout_split(
    tiny_llama_path: str, tmp_path: Path
) -> None:
    level = '{"max_instructions": 1, "max_response_chars": 600, "long_context_share": 0}'
    args = ["eval", "--model", tiny_llama_path, "--bench", "instruction-heldout", "--limit", "2"]
    args += ["--max-tokens", "4", "--out", str(tmp_path / "e"), "--level", f"instruction={level}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "e" / "instruction-heldout" / "result.json").read_text())
    assert saved["info"]["level"]["max_instructions"] == 1
    bad = CliRunner().invoke(app, [*args[:-1], 'instruction={"max_instructions": 9}'])
    assert bad.exit_code == 2 and "instruction level" in bad.output


# ---- compare -----------------------------------------------------------------------------------


def _write(
    root: Path, scores: dict[int, list[float]], extra: bool = False, bench: str = "molbench"
) -> Path:
    for seed, values in scores.items():
        results = [
            ItemResult(bench=bench, item_id=f"bind-{i:03d}", seed=seed, score=v)
            for i, v in enumerate(values)
        ]
        if extra:
            results.append(ItemResult(bench=bench, item_id="only-here", seed=seed, score=1))
        append_items(items_path(root / bench, seed), results)
    return root


def test_compare_gives_the_exact_paired_difference(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", {0: [1, 1, 0, 1], 1: [1, 0, 0, 1], 2: [0, 0, 0, 0]}, extra=True)
    b = _write(tmp_path / "b", {0: [0, 1, 0, 0], 1: [0, 1, 0, 1]})
    (comparison,) = compare_dirs(a, b)
    # Per item over the shared seeds 0 and 1: A = 1, .5, 0, 1 and B = 0, 1, 0, .5.
    assert (comparison.bench, comparison.metric, comparison.seeds) == (
        "molbench",
        "accuracy",
        [0, 1],
    )
    assert comparison.difference.mean == pytest.approx(0.25)
    assert comparison.difference.n == 4
    assert comparison.difference.low < 0.25 < comparison.difference.high
    output = CliRunner().invoke(app, ["eval", "compare", str(a), str(b)])
    assert output.exit_code == 0, output.output
    assert "+0.250" in output.output
    flag = CliRunner().invoke(app, ["eval", "--compare", str(b), str(a)])
    assert flag.exit_code == 0 and "-0.250" in flag.output
    saved = tmp_path / "ab.json"
    written = CliRunner().invoke(app, ["eval", "compare", str(a), str(b), "--out", str(saved)])
    assert written.exit_code == 0, written.output
    (row,) = json.loads(saved.read_text())["comparisons"]
    assert (row["bench"], row["metric"], row["seeds"], row["n"]) == (
        "molbench",
        "accuracy",
        [0, 1],
        4,
    )
    assert row["mean"] == pytest.approx(0.25) and row["low"] == comparison.difference.low


def test_compare_covers_the_domains_heldout_benches(tmp_path: Path) -> None:
    a = _write(tmp_path / "a", {0: [1, 1, 0]}, bench="search-heldout")
    b = _write(tmp_path / "b", {0: [0, 1, 0]}, bench="search-heldout")
    _write(a, {0: [1, 1]}, bench="instruction-heldout")
    _write(b, {0: [1, 0]}, bench="instruction-heldout")
    found = {c.bench: c.difference.mean for c in compare_dirs(a, b)}
    assert found == pytest.approx({"search-heldout": 1 / 3, "instruction-heldout": 0.5})
