"""FrontierScience: rubric parsing on the real rows, olympiad answers matched without a judge,
unscored items (never zeros) without one, the judge path, and `longhorizon eval`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Message
from longhorizon.evaluation import frontierscience as fs
from longhorizon.evaluation.items import items_path, read_items
from longhorizon.evaluation.judge import (
    JUDGE_EMPTY,
    JUDGE_FAILED,
    JUDGE_UNPARSED,
    NO_JUDGE,
    NO_JUDGE_MESSAGE,
    Judge,
    open_judge,
)
from longhorizon.evaluation.options import EvalOptions, JudgeSettings
from longhorizon.evaluation.runner import evaluate_agent
from longhorizon.evaluation.types import BenchResult, ItemResult
from longhorizon.harness import ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.serving.vllm import VLLMServer, free_port
from tests.chat_server import chat_server

needs_data = pytest.mark.usefixtures("benchmarks")  # skipped without the data; CI=true: error
QUIET = {"show_progress": False}
KELVIN = "bb0539ef-d9fd-4215-bf16-b0eca44a8778"  # reference 2.31 x 10^6 K
POWER_LAW = "4195adea-9fa5-4f25-91ef-ebd6c57cfb88"  # reference T = T_0 (N/N_0)^(1/5)
ISOMERS = "a74ccc5b-fd37-49fa-b784-871dbcc41e9e"  # the shortest problem; reference 9
FORMULA = "c982b5bc-0fb8-4f12-94fa-f05715209ead"  # reference C5H12O2: prose, judge only
WEAK_VALUE = "222e24bf-14d4-4660-a5dd-01b2b3528cfa"  # research, 10 rubric items
DUAL_FOCK = "1a5d24e0-9af4-4b36-98d1-2845df696d90"  # research, 11 rubric items
BORYLATION = "0eb69a4c-0774-46b6-87dd-6686f639b7fa"  # research, the shortest, 7 items
TWICE = "af50243e-3a60-4460-9536-f9a02c4f8eb8"  # the id on two identical rows


@pytest.fixture(scope="module")
def rows(benchmarks: Path) -> dict[str, fs.FrontierItem]:
    items, _ = fs.read_rows(benchmarks / "frontierscience" / "frontierscience.csv")
    return {i.id: i for i in items}


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    from transformers import AutoTokenizer

    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def score(item: fs.FrontierItem, response: str, judge: Judge | None = None) -> ItemResult:
    return asyncio.run(fs.score_item(judge, item, response, 0, {}))


# ---- reading -----------------------------------------------------------------------------------


def test_rubric_lines_become_items_with_points() -> None:
    rubric = fs.parse_rubric(
        "Points: 1.5, Item: A - first\n\n- (0.5pts) sub\nPoints: 0.25, Item: B"
    )
    assert [(r.points, r.text) for r in rubric] == [
        (1.5, "A - first\n\n- (0.5pts) sub"),
        (0.25, "B"),
    ]
    with pytest.raises(ValueError, match="a rubric starts with 'Points: X, Item:'"):
        fs.parse_rubric("Intro\nPoints: 1, Item: x")


@needs_data
def test_real_rubrics_have_their_items_and_ten_points(rows: dict[str, fs.FrontierItem]) -> None:
    weak = rows[WEAK_VALUE].rubric
    assert [r.points for r in weak] == [1.5, 0.5, 0.75, 1.0, 1.5, 0.75, 1.5, 0.25, 1.0, 1.25]
    assert weak[0].text.startswith("Background Theory - Qualitatively describes the procedure")
    assert weak[1].text.startswith("Background Theory - Recalls that for a typical weak value")
    assert len(rows[DUAL_FOCK].rubric) == 11
    assert [r.points for r in rows[BORYLATION].rubric] == [1.0, 1.5, 2.0, 1.5, 2.0, 1.0, 1.0]
    research = [i for i in rows.values() if i.category == fs.RESEARCH]
    assert len(research) == 60
    assert all(sum(r.points for r in i.rubric) == pytest.approx(10.0) for i in research)


@needs_data
def test_ids_are_unique_and_references_are_read(rows: dict[str, fs.FrontierItem]) -> None:
    assert len(rows) == 160 and rows[TWICE].problem == rows[f"{TWICE}-2"].problem
    kelvin, power = rows[KELVIN].reference, rows[POWER_LAW].reference
    assert kelvin is not None and kelvin.kind == "numeric"
    assert kelvin.params == {"value": 2.31e6, "unit": "K", "rel_tol": 0.01}
    assert power is not None and power.kind == "symbolic"
    assert power.params["symbols"] == ["N", "N_0", "T_0"]
    assert rows[FORMULA].reference is None  # prose is the judge's


@needs_data
def test_load_without_a_judge_leaves_research_out_and_says_why() -> None:
    loaded = fs.load_items(EvalOptions(), Path("."))
    assert len(loaded.items) == 100 and {i.category for i in loaded.items} == {fs.OLYMPIAD}
    info = loaded.info
    assert (info["questions"], info["scorable"]) == (160, 100)
    assert info["excluded"] == {fs.NEEDS_JUDGE: 60}
    assert info["judge"] == NO_JUDGE_MESSAGE and info["duplicate_ids"] == [TWICE]
    assert info["olympiad_references"] == {"judge only": 67, "numeric": 16, "symbolic": 17}
    judged = fs.load_items(EvalOptions(judge=JudgeSettings(base_url="u", model="m")), Path("."))
    assert len(judged.items) == 160 and "excluded" not in judged.info
    assert judged.info["judge"] == {"model": "m", "base_url": "u"}


# ---- scoring -----------------------------------------------------------------------------------


@needs_data
def test_a_right_olympiad_answer_passes_without_a_judge(rows: dict[str, fs.FrontierItem]) -> None:
    for response in (
        "So T = 2.3e6 K roughly.\nFINAL ANSWER: \\( 2.31 \\times 10^{6} \\, \\mathrm{K} \\)",
        "FINAL ANSWER\n2310 kK",
        "... \\boxed{2.309 \\times 10^6 K}",
    ):
        result = score(rows[KELVIN], response)
        assert (result.score, result.scored, result.details["method"]) == (1.0, True, "match")
    power = score(rows[POWER_LAW], "**FINAL ANSWER:** $T = T_0 \\left(N/N_0\\right)^{0.2}$")
    assert power.score == 1.0 and power.prediction == "$T = T_0 \\left(N/N_0\\right)^{0.2}$"


@needs_data
def test_a_wrong_olympiad_answer_is_unscored_without_a_judge(
    rows: dict[str, fs.FrontierItem],
) -> None:
    for item, response in (
        (rows[KELVIN], "FINAL ANSWER: 3.1 \\times 10^6 K"),
        (rows[POWER_LAW], "FINAL ANSWER: T = T_0 (N/N_0)^{1/3}"),
        (rows[KELVIN], "I could not solve it."),  # no final answer at all
        (rows[KELVIN], "FINAL ANSWER: \\(\\)"),  # an empty one
        (rows[FORMULA], "FINAL ANSWER: C5H12O2"),  # right, but only a judge can say so
    ):
        result = score(item, response)
        assert (result.score, result.unscored) == (0.0, NO_JUDGE)
        assert result.details["unscored_reason"] == NO_JUDGE_MESSAGE


@needs_data
def test_judge_verdicts_score_what_the_match_cannot(rows: dict[str, fs.FrontierItem]) -> None:
    with chat_server("Same compound.\nVERDICT: correct", _grades()) as server:

        async def main() -> tuple[ItemResult, ItemResult]:
            async with open_judge(JudgeSettings(base_url=server.url, model="m")) as judge:
                olympiad = await fs.score_item(judge, rows[FORMULA], "FINAL ANSWER: C5H12O2", 0, {})
                research = await fs.score_item(judge, rows[BORYLATION], "At C4, because...", 0, {})
                return olympiad, research

        olympiad, research = asyncio.run(main())
    assert (olympiad.score, olympiad.details["method"]) == (1.0, "judge")
    assert olympiad.details["judge_reply"].endswith("VERDICT: correct")
    sent = server.requests[0]["messages"][0]["content"]
    assert "REFERENCE ANSWER:\nC5H12O2" in sent and "STUDENT'S FINAL ANSWER:\nC5H12O2" in sent
    # awarded 1, 1.5, 0, 1.5, 0, 1, 0 of the 7 items: 5 of 10 points
    assert research.details["awarded"] == [1.0, 1.5, 0.0, 1.5, 0.0, 1.0, 0.0]
    assert (research.score, research.details["earned"], research.details["total"]) == (
        0.5,
        5.0,
        10.0,
    )
    assert "Item 7 (at most 1 points)" in server.requests[1]["messages"][0]["content"]


def _grades() -> str:
    return "\n".join(f"ITEM {k}: {p}" for k, p in enumerate([1, 1.5, 0, 1.5, 0, 1, 0], 1))


@needs_data
def test_a_dead_judge_leaves_items_unscored_with_the_reason(
    rows: dict[str, fs.FrontierItem],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here

    async def main() -> ItemResult:
        async with open_judge(JudgeSettings(base_url=url, model="m")) as judge:
            return await fs.score_item(judge, rows[BORYLATION], "At C4.", 0, {})

    result = asyncio.run(main())
    assert (result.score, result.unscored) == (0.0, JUDGE_FAILED)
    assert (
        f"the judge m at {url} failed: BackendError: cannot reach"
        in result.details["unscored_reason"]
    )


# ---- the bench through the runner --------------------------------------------------------------


def planted(messages: list[Message]) -> str:
    """The right answer to the temperature problem, a wrong one to every other."""
    question = messages[-1].content or ""
    return "FINAL ANSWER: 2.31e6 K" if "average temperature" in question else "FINAL ANSWER: 1"


@needs_data
def test_unscored_items_are_counted_not_averaged_and_a_judge_rerun_scores_them(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    agent = ScriptedAgent(renderer, planted)
    kelvin_at = [i.id for i in fs.load_items(EvalOptions(), Path(".")).items].index(KELVIN)
    options = EvalOptions(limit=kelvin_at + 1, batch_size=2, **QUIET)
    result = asyncio.run(evaluate_agent(agent, "planted", [fs.NAME], 1, tmp_path, options))[fs.NAME]
    assert result.n_items == {0: 1} and result.unscored == {0: {NO_JUDGE: kelvin_at}}
    assert result.metrics["score"].per_seed[0].mean == 1.0 and result.pooled.n == 1
    assert result.metrics["olympiad"].pooled.mean == 1.0
    assert result.info["judge"] == NO_JUDGE_MESSAGE

    with chat_server("VERDICT: incorrect") as server:  # now with a judge: the unscored rerun
        judge = JudgeSettings(base_url=server.url, model="m")
        rerun = asyncio.run(
            evaluate_agent(
                agent,
                "planted",
                [fs.NAME],
                1,
                tmp_path,
                options.model_copy(update={"judge": judge}),
            )
        )[fs.NAME]
    assert len(server.requests) == kelvin_at  # only the unscored items were judged
    assert rerun.info["runs"][0]["reused"] == 1 and rerun.info["runs"][0]["ran"] == kelvin_at
    assert rerun.n_items == {0: kelvin_at + 1} and rerun.unscored == {0: {}}
    assert rerun.pooled.mean == pytest.approx(1 / (kelvin_at + 1))
    stored = read_items(items_path(tmp_path / fs.NAME, 0))
    assert sum(r.scored for r in stored.values()) == kelvin_at + 1


@needs_data
def test_eval_cli_runs_frontierscience_and_reports_the_unscored(
    tiny_llama_path: str, tmp_path: Path
) -> None:
    args = ["eval", "--model", tiny_llama_path, "--bench", "frontierscience", "--limit", "3"]
    result = CliRunner().invoke(app, [*args, "--max-tokens", "8", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (
        "100 of 160 questions scored; left out: 60 research rubric (needs a judge)" in result.output
    )
    assert (
        "frontierscience seed 0: 3 of 3 items unscored (in no metric): 3 no judge" in result.output
    )
    assert f"frontierscience: {NO_JUDGE_MESSAGE}" in result.output
    saved = BenchResult.load(tmp_path / fs.NAME / "result.json")
    assert saved.n_items == {0: 0} and saved.unscored == {0: {NO_JUDGE: 3}}
    assert saved.pooled.n == 0  # nothing scored: no number, rather than a zero


@pytest.mark.vllm
@needs_data
def test_eval_cli_with_smollm2_as_the_judge(
    tiny_llama_path: str, vllm_server: VLLMServer, tmp_path: Path
) -> None:
    args = ["eval", "--model", tiny_llama_path, "--bench", "frontierscience", "--limit", "2"]
    args += ["--max-tokens", "8", "--out", str(tmp_path), "--judge-base-url", vllm_server.base_url]
    args += ["--judge-model", vllm_server.served_model_name, "--judge-max-tokens", "32"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"frontierscience: judge {vllm_server.served_model_name} at" in result.output
    items = read_items(items_path(tmp_path / fs.NAME, 0))
    assert len(items) == 2
    for item in items.values():  # the tiny model writes no final answer: each went to the judge
        if item.scored:
            assert item.details["method"] == "judge" and item.details["judge_reply"]
        else:
            # the prompts fit SmolLM2's 2048 tokens: it answers, parsed or not, never fails
            assert item.unscored in (JUDGE_UNPARSED, JUDGE_EMPTY)
            assert item.details["unscored_reason"]
    saved = BenchResult.load(tmp_path / fs.NAME / "result.json")
    assert saved.n_items[0] + sum(saved.unscored[0].values()) == 2


def test_judge_flags_reach_the_options_and_need_each_other(tmp_path: Path) -> None:
    import yaml

    from longhorizon.evaluation.config import EvalConfig

    base = ["eval", "--bench", "frontierscience", "--out", str(tmp_path), "--model", "m"]
    judge = ["--judge-base-url", "http://127.0.0.1:8000/v1", "--judge-model", "j"]
    result = CliRunner().invoke(app, [*base, *judge, "--judge-max-tokens", "512", "--dry-run"])
    assert result.exit_code == 0, result.output
    options = EvalConfig.model_validate(yaml.safe_load(result.output)).options()
    assert options.judge == JudgeSettings(
        base_url="http://127.0.0.1:8000/v1", model="j", max_tokens=512
    )
    half = CliRunner().invoke(app, [*base, *judge[:2], "--dry-run"])
    assert half.exit_code == 2
    assert "a judge needs both judge_base_url and judge_model" in half.output
    none = CliRunner().invoke(app, [*base, "--dry-run"])
    assert EvalConfig.model_validate(yaml.safe_load(none.output)).options().judge is None


@pytest.mark.vllm
@needs_data
def test_smollm2_grades_a_real_research_rubric(
    rows: dict[str, fs.FrontierItem], vllm_server: VLLMServer
) -> None:
    settings = JudgeSettings(
        base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=64
    )

    async def main() -> ItemResult:
        async with open_judge(settings) as judge:
            response = "Borylation goes to C4, para to the benzyl group: the ammonium shields C5."
            return await fs.score_item(judge, rows[BORYLATION], response, 0, {})

    result = asyncio.run(main())  # 1,221 prompt tokens: the rubric prompt fits the server
    if result.scored:
        assert len(result.details["awarded"]) == 7 and result.details["total"] == 10.0
        assert result.score == pytest.approx(result.details["earned"] / 10.0)
    else:
        assert result.unscored in (JUDGE_UNPARSED, JUDGE_EMPTY)
        assert result.details["unscored_reason"]
