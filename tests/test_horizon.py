"""The horizon curriculum: budgets checked against the tasks, hop levels in the held-out
split, success by hop count from the item files, and truncated episodes counted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Message
from longhorizon.domains import INSTRUCTION, SEARCH
from longhorizon.domains.search import SearchLevel, SearchProposer, tool_steps
from longhorizon.domains.search.expert import tool_call
from longhorizon.domains.search.spec import encyclopedia
from longhorizon.evaluation.config import EvalConfig
from longhorizon.evaluation.heldout import heldout_bench
from longhorizon.evaluation.items import append_items, items_path, read_seeds
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.runner import evaluate_agent, get_bench, summarise
from longhorizon.evaluation.stats import bootstrap_mean
from longhorizon.evaluation.tables import horizon_table
from longhorizon.evaluation.types import BenchResult, ItemResult
from longhorizon.harness import ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.pipeline.recipe import Recipe, find_recipe

QUIET = {"show_progress": False}


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    from transformers import AutoTokenizer

    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


# ---- budgets -----------------------------------------------------------------------------------


def test_required_turns_are_the_tool_steps_of_the_longest_walk_and_the_answer() -> None:
    assert [tool_steps(h) for h in (1, 2, 6)] == [4, 6, 14]
    assert SEARCH.required_turns(SearchLevel(hops=(1, 6))) == 15
    assert SEARCH.required_turns(SearchLevel()) == 11  # the default, hops 2..4
    assert INSTRUCTION.required_turns(INSTRUCTION.parse_level(None)) == 1


def _tiny(**changes: object) -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(find_recipe("tiny").read_text())
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    return data


def test_the_tiny_recipe_fits_its_tasks_and_a_short_budget_is_refused() -> None:
    recipe = Recipe.model_validate(_tiny())
    assert recipe.eval.max_turns == SEARCH.required_turns(recipe.synth.level("search")) == 11
    with pytest.raises(ValidationError, match=r"eval\.max_turns = 4 is below the 11 turns search"):
        Recipe.model_validate(_tiny(eval__max_turns=4))
    with pytest.raises(ValidationError, match=r"distill\.rollout\.max_turns = 2 is below the 11"):
        Recipe.model_validate(_tiny(distill__rollout__max_turns=2))
    longer = {"entities": 400, "hops": [1, 6]}
    with pytest.raises(ValidationError, match=r"= 11 is below the 15 turns search tasks need"):
        Recipe.model_validate(_tiny(synth__levels__search=longer))


def test_the_eval_config_refuses_too_few_turns_for_its_benches(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"max_turns = 10 is below the 11 turns search"):
        EvalConfig(bench=("search-heldout",), out=tmp_path, max_turns=10)
    six = {"search": {"hops": [1, 6]}}
    with pytest.raises(ValidationError, match=r"max_turns = 14 is below the 15 turns"):
        EvalConfig(bench=("search-heldout",), out=tmp_path, max_turns=14, levels=six)
    EvalConfig(bench=("search-heldout",), out=tmp_path, max_turns=15, levels=six)
    EvalConfig(bench=("instruction-heldout", "ifeval"), out=tmp_path, max_turns=1)


def test_eval_dry_run_shows_the_refusal(tmp_path: Path) -> None:
    args = ["eval", "--model", "m", "--bench", "search-heldout", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--max-turns", "4", "--dry-run"])
    assert result.exit_code != 0
    text = " ".join(result.output.split())
    assert "max_turns = 4 is below the 11 turns search tasks need" in text


# ---- tokens per turn ---------------------------------------------------------------------------


def _six(**changes: object) -> Recipe:
    data = yaml.safe_load(find_recipe("tiny-six").read_text())
    for section, fields in changes.items():
        data[section] = {**data[section], **fields}  # type: ignore[dict-item]
    return Recipe.model_validate(data)


def test_a_short_token_budget_names_the_expert_turn_it_cuts() -> None:
    level = SearchLevel()
    assert SEARCH.token_shortfall(level, 85, "eval", "eval.max_tokens") is None
    assert SEARCH.token_shortfall(level, None, "eval", "eval.max_tokens") is None  # each task's own
    text = SEARCH.token_shortfall(level, 64, "eval", "eval.max_tokens")
    assert text == (
        "eval.max_tokens = 64 tokens per turn is below the 85 of search's longest expert turn "
        "at its level: such turns are cut (a cut tool call does not parse); set "
        "eval.domain_max_tokens.search >= 85"
    )
    level600 = INSTRUCTION.parse_level({"max_response_chars": 600})
    assert INSTRUCTION.turn_tokens(level600) == 240
    assert "cut; set" in (
        INSTRUCTION.token_shortfall(level600, 64, "eval", "eval.max_tokens") or ""
    )


def test_tiny_six_covers_every_expert_turn_but_instruction_in_opd() -> None:
    from longhorizon.pipeline.recipe import token_warnings

    assert token_warnings(_six()) == [
        "distill.rollout.max_tokens = 64 tokens per turn is below the 240 of instruction's "
        "longest expert turn at its level: such turns are cut; set "
        "distill.rollout.domain_max_tokens.instruction >= 240"
    ]
    lowered = token_warnings(_six(eval={"domain_max_tokens": {"mle": 700}}))
    assert any(
        w.startswith("eval.domain_max_tokens.mle = 700 tokens per turn is below the 789")
        and w.endswith("set eval.domain_max_tokens.mle >= 789")
        for w in lowered
    )
    no_science = {"domain_max_tokens": {"instruction": 240, "mle": 800}}
    assert any(
        "192 tokens per turn is below the 489 of science's" in w
        for w in token_warnings(_six(eval=no_science))
    )
    with pytest.raises(ValidationError, match=r"eval\.domain_max_tokens names \['maths'\]"):
        _six(eval={"domain_max_tokens": {"maths": 100}})


def test_a_domain_turn_budget_below_its_tasks_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match=r"eval\.domain_max_turns\.mle = 12 is below the 18"):
        _six(eval={"domain_max_turns": {"science": 5, "mle": 12}})
    rollout = {**_six().distill["rollout"], "domain_max_turns": {"search": 10}}
    with pytest.raises(ValidationError, match=r"rollout\.domain_max_turns\.search = 10 is below"):
        _six(distill={"rollout": rollout})
    with pytest.raises(ValidationError, match=r"eval\.domain_max_turns names \['maths'\]"):
        _six(eval={"domain_max_turns": {"maths": 3}})


def test_each_heldout_split_is_evaluated_under_its_domain_budget() -> None:
    from longhorizon.pipeline.run import eval_options
    from longhorizon.pipeline.stages import plan

    p = plan(_six(), "@student")
    tokens = {
        b: eval_options(p, b, None).max_tokens
        for b in (
            "science-heldout",
            "mle-heldout",
            "instruction-heldout",
            "search-heldout",
            "ifeval",
        )
    }
    turns = {b: eval_options(p, b, None).max_turns for b in ("science-heldout", "mle-heldout")}
    assert turns == {"science-heldout": 5, "mle-heldout": 18}
    assert tokens == {
        "science-heldout": 512,
        "mle-heldout": 800,
        "instruction-heldout": 240,
        "search-heldout": 192,
        "ifeval": 192,
    }


def test_rollout_budgets_apply_per_domain_and_stay_out_of_the_dump_unset() -> None:
    from longhorizon.core import Task
    from longhorizon.distill.config import RolloutConfig

    cfg = RolloutConfig(
        max_turns=5,
        max_tokens=64,
        domain_max_tokens={"science": 512},
        domain_max_turns={"science": 3},
    )
    science = cfg.budgeted(Task(id="a", domain="science", instruction="q"), "a@step0.0")
    search = cfg.budgeted(Task(id="b", domain="search", instruction="q"), "b@step0.1")
    assert (science.id, science.protocol.budgets.max_response_tokens) == ("a@step0.0", 512)
    assert science.protocol.budgets.max_turns == 3
    assert (search.protocol.budgets.max_response_tokens, search.protocol.budgets.max_turns) == (
        64,
        5,
    )
    assert (
        not {"domain_max_tokens", "domain_max_turns"}
        & RolloutConfig(max_tokens=64).model_dump().keys()
    )
    assert cfg.model_dump()["domain_max_tokens"] == {"science": 512}


@pytest.mark.parametrize(
    ("domain", "level", "n"),
    [
        ("search", {"entities": 400, "hops": [1, 4]}, 8),
        ("molecules", {"pool_size": 400, "constraints": [1, 2], "set_size": [4, 5]}, 6),
        ("molecules", {"pool_size": 400, "set_size": [8, 8], "kind_weights": [1, 0, 0]}, 6),
        ("tool", None, 6),
        ("science", {"materials": 10}, 12),
    ],
)
def test_the_declared_turn_length_holds_every_expert_turn(
    domain: str,
    level: dict | None,
    n: int,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    from longhorizon.core import TrajectoryStore
    from longhorizon.core.trajectory import longest_turn
    from longhorizon.domains import registry, synthesize

    spec = registry.get(domain)
    report = asyncio.run(synthesize(spec, n, tmp_path, level=level, concurrency=4))
    longest = max(longest_turn(t) for t in TrajectoryStore(tmp_path / "trajectories"))
    assert report.longest_turn == longest > 0
    assert longest <= spec.turn_tokens(spec.parse_level(level))


# ---- hop levels --------------------------------------------------------------------------------


def test_the_heldout_split_covers_each_hop_level_deterministically(tmp_path: Path) -> None:
    world = SEARCH.open_world(SearchLevel(entities=400, hops=(1, 6)), 0, tmp_path)
    tasks = world.heldout(12, 1_000_000)
    assert [t.metadata["hops"] for t in tasks] == [1, 2, 3, 4, 5, 6] * 2
    assert [t.metadata["tool_steps"] for t in tasks[:6]] == [4, 6, 8, 10, 12, 14]
    assert [t.id for t in world.heldout(12, 1_000_000)] == [t.id for t in tasks]
    assert [t.id for t in world.heldout(5, 1_000_000)] == [t.id for t in tasks[:5]]
    assert all(len(t.evidence) == t.metadata["hops"] + 1 for t in tasks)


def test_synthesis_draws_hops_by_the_level_weights() -> None:
    import random

    with pytest.raises(ValidationError, match=r"one weight >= 0 per hop count 1\.\.3"):
        SearchLevel(hops=(1, 3), hop_weights=(1.0, 1.0))
    proposer = SearchProposer(encyclopedia(400, 0), (1, 3), weights=(0.0, 0.0, 1.0))
    rng = random.Random(0)
    tasks = [t for t in (proposer.propose(rng) for _ in range(20)) if t is not None]
    assert tasks and {t.metadata["hops"] for t in tasks} == {3}
    # A failed solve says nothing about ease: the curriculum keeps its easiest level.
    proposer.feedback(tasks[0], ["invalid: solver failed", "uninformative: 2 tool steps < 4"])
    assert proposer.min_hops == 1


# ---- success by hop count, truncation ----------------------------------------------------------


def _item(item_id: str, seed: int, hops: int, score: float, status: str) -> ItemResult:
    details = {"hops": hops, "status": status, "status_reason": None}
    return ItemResult(
        bench="search-heldout", item_id=item_id, seed=seed, score=score, details=details
    )


def test_the_by_hop_table_equals_a_recomputation_from_the_item_files(tmp_path: Path) -> None:
    scores = {
        ("a", 1): (1, 1),
        ("b", 1): (1, 0),
        ("c", 2): (0, 0),
        ("d", 2): (1, 1),
        ("e", 3): (0, 1),
    }
    for seed in (0, 1):
        status = "COMPLETED" if seed == 0 else "TRUNCATED"
        items = [_item(i, seed, h, s[seed], status) for (i, h), s in scores.items()]
        append_items(items_path(tmp_path, seed), items)
    result = summarise(get_bench("search-heldout"), "m", read_seeds(tmp_path))
    by_seed = read_seeds(tmp_path)  # recompute: seed-averaged scores of each hop's items
    for hops in (1, 2, 3):
        ids = [i for (i, h) in scores if h == hops]
        values = [sum(by_seed[s][i].score for s in (0, 1)) / 2 for i in ids]
        assert result.by_hops[hops] == bootstrap_mean(values)
    assert [round(result.by_hops[h].mean, 3) for h in (1, 2, 3)] == [0.75, 0.5, 0.5]
    assert result.truncated == {0: 0, 1: 5} and result.truncated_share() == 0.5
    assert BenchResult.from_json(result.to_json()).by_hops == result.by_hops

    console = Console(width=120, record=True)
    console.print(horizon_table("tiny search-heldout", {"sft": result}))
    row = next(line for line in console.export_text().splitlines() if "sft" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[0] == "sft" and cells[-1] == "50%"
    assert cells[1] == f"0.75 [{result.by_hops[1].low:.2f}, {result.by_hops[1].high:.2f}] (2)"


def test_evaluation_records_truncated_episodes_and_hops(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    def search_forever(messages: list[Message]) -> str:
        return tool_call("search", query="anything")  # never answers: the turn limit ends it

    levels = {"search": {"entities": 300, "hops": [1, 2]}}
    options = EvalOptions(limit=2, levels=levels, max_turns=2, batch_size=2, **QUIET)
    agent = ScriptedAgent(renderer, search_forever, "searcher")
    out = tmp_path / "eval"
    result = asyncio.run(evaluate_agent(agent, "searcher", ["search-heldout"], 1, out, options))
    bench = result["search-heldout"]
    assert (bench.truncated, bench.n_items, bench.pooled.mean) == ({0: 2}, {0: 2}, 0.0)
    assert sorted(bench.by_hops) == [1, 2]
    saved = json.loads((out / "search-heldout" / "result.json").read_text())
    assert saved["truncated"] == {"0": 2}
    assert sorted(saved["by_hops"]) == ["1", "2"]
    loaded = heldout_bench(SEARCH).load_items(options, out / "search-heldout").items
    assert [t.metadata["hops"] for t in loaded] == [1, 2]


def test_the_report_draws_the_curve_from_the_results(tmp_path: Path) -> None:
    from longhorizon.report import write_report

    run = tmp_path / "run"
    scores = {"base": (0, 0, 0, 0), "sft": (1, 0, 1, 0), "distilled": (1, 1, 1, 0)}
    results = {}
    for label, values in scores.items():
        bench_dir = run / "eval" / label / "search-heldout"
        status = "TRUNCATED" if label == "base" else "COMPLETED"
        items = [_item(f"q{i}", 0, 1 + i // 2, v, status) for i, v in enumerate(values)]
        append_items(items_path(bench_dir, 0), items)
        results[label] = summarise(get_bench("search-heldout"), label, read_seeds(bench_dir))
        results[label].save(bench_dir / "result.json")
    md, _ = write_report(run)
    text = md.read_text()
    assert (run / "report" / "plots" / "horizon.png").is_file()
    lines = text.splitlines()
    table = lines[lines.index("## Long-horizon curve") :]
    for label in ("base", "sft", "distilled"):
        row = next(line for line in table if line.startswith(f"| {label} |"))
        est = results[label].by_hops[2]
        assert f"{est.mean:.3f} [{est.low:.3f}, {est.high:.3f}] (n=2)" in row
    assert [round(results[s].by_hops[1].mean, 2) for s in scores] == [0.0, 0.5, 1.0]
    cut = lines[lines.index("## Episodes cut by a budget") :]
    assert "| base | search-heldout | 4 | 4 | 100% | 0 |" in cut
