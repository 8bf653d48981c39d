"""The LLM judge: strict parsing of its replies, unscored outcomes for every failure, and the
real path against a vLLM CPU server (SmolLM2-135M: its verdicts are poor, so these tests check
the plumbing, the parsing and the error paths, not the quality)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from longhorizon.evaluation.judge import (
    JUDGE_EMPTY,
    JUDGE_FAILED,
    JUDGE_UNPARSED,
    Equivalence,
    Judge,
    JudgeReplyError,
    RubricGrade,
    RubricItem,
    Unscored,
    open_judge,
    parse_rubric_reply,
    parse_verdict,
    rubric_prompt,
)
from longhorizon.evaluation.options import JudgeSettings
from longhorizon.serving.vllm import VLLMServer, free_port
from tests.chat_server import chat_server

T = TypeVar("T")
RUBRIC = (RubricItem(1.5, "States the law."), RubricItem(0.5, "Gives the value."))


def with_judge(settings: JudgeSettings, use: Callable[[Judge], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_judge(settings) as judge:
            assert judge is not None
            return await use(judge)

    return asyncio.run(main())


# ---- parsing ------------------------------------------------------------------------------------


def test_verdict_is_the_last_line() -> None:
    assert parse_verdict("The values agree.\nVERDICT: correct") is True
    assert parse_verdict("Off by 10x.\n\n**VERDICT: Incorrect.**\n") is False
    assert parse_verdict("verdict:correct") is True


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "The answer is right.",
        "VERDICT: correct\nbecause the numbers agree",  # not the last line
        "VERDICT: probably correct",
        "VERDICT: correct or incorrect",
    ],
)
def test_a_verdict_that_does_not_parse_is_an_error(reply: str) -> None:
    with pytest.raises(JudgeReplyError, match="VERDICT: correct\\|incorrect"):
        parse_verdict(reply)


def test_rubric_reply_gives_points_per_item() -> None:
    reply = "Item 1 is met.\nITEM 1: 1.5\nITEM 2: 0"
    assert parse_rubric_reply(reply, RUBRIC) == (1.5, 0.0)
    forms = "**ITEM 1: 0.75/1.5 points**\nitem 2: .5 pts"
    assert parse_rubric_reply(forms, RUBRIC) == (0.75, 0.5)
    revised = "ITEM 1: 1.5\nITEM 2: 0.5\nOn reflection:\nITEM 1: 1\nITEM 2: 0.5"
    assert parse_rubric_reply(revised, RUBRIC) == (1.0, 0.5)  # a later line replaces


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("ITEM 1: 1.5", r"no 'ITEM k: <points>' line for item\(s\) \[2\]"),
        ("ITEM 1: 1.5\nITEM 2: 0.5\nITEM 3: 1", r"item\(s\) \[3\]; the rubric has 2"),
        ("ITEM 1: yes\nITEM 2: 0.5", "ITEM 1: 'yes' is not a number of points"),
        ("ITEM 1: 2\nITEM 2: 0.5", "ITEM 1: 2 points, more than its 1.5"),
        ("ITEM 1: 1/2\nITEM 2: 0.5", "ITEM 1: out of 2, but the item is worth 1.5"),
        ("", r"no 'ITEM k: <points>' line for item\(s\) \[1, 2\]"),
    ],
)
def test_a_rubric_reply_that_does_not_parse_is_an_error(reply: str, why: str) -> None:
    with pytest.raises(JudgeReplyError, match=why):
        parse_rubric_reply(reply, RUBRIC)


def test_rubric_prompt_lists_items_with_their_points() -> None:
    prompt = rubric_prompt("Find g.", RUBRIC, "g = 9.8")
    assert "2 items, worth 2 points in all" in prompt
    assert "Item 1 (at most 1.5 points): States the law." in prompt
    assert prompt.rstrip().endswith(
        "ITEM 1: <points awarded, 0 to 1.5>\nITEM 2: <points awarded, 0 to 0.5>"
    )


# ---- a canned server: exact replies, every outcome --------------------------------------------


def test_a_parsed_verdict_and_grade_and_the_request_sent() -> None:
    with chat_server("Same value.\nVERDICT: correct", "ITEM 1: 1\nITEM 2: 0.5") as server:
        settings = JudgeSettings(base_url=server.url, model="judge-m", max_tokens=77)

        async def both(judge: Judge) -> tuple[object, object]:
            verdict = await judge.equivalent("Find v.", "12 m/s", "43.2 km/h")
            return verdict, await judge.grade("Find v.", RUBRIC, "v = 12 m/s")

        verdict, grade = with_judge(settings, both)
    assert verdict == Equivalence(True, "Same value.\nVERDICT: correct")
    assert isinstance(grade, RubricGrade) and grade.awarded == (1.0, 0.5) and grade.earned == 1.5
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["model"] == "judge-m"
    assert sent["temperature"] == 0.0 and sent["max_tokens"] == 77
    # plain chat: nothing a hosted API would reject
    assert not {"return_token_ids", "return_tokens_as_token_ids", "logprobs"} & set(sent)
    [message] = sent["messages"]
    assert message["role"] == "user" and "REFERENCE ANSWER:\n12 m/s" in message["content"]
    assert "STUDENT'S FINAL ANSWER:\n43.2 km/h" in message["content"]


def test_empty_unparsed_and_failed_replies_are_unscored_with_their_reason() -> None:
    with chat_server("   ", "It is right.", "ITEM 1: 1") as server:
        settings = JudgeSettings(base_url=server.url, model="m")

        async def three(judge: Judge) -> list[object]:
            return [
                await judge.equivalent("p", "1", "1"),
                await judge.equivalent("p", "1", "1"),
                await judge.grade("p", RUBRIC, "r"),
            ]

        empty, unparsed, partial = with_judge(settings, three)
    assert empty == Unscored(JUDGE_EMPTY, f"the judge m at {server.url} returned an empty reply")
    assert isinstance(unparsed, Unscored) and unparsed.kind == JUDGE_UNPARSED
    assert "VERDICT: correct|incorrect" in unparsed.message and "It is right." in unparsed.message
    assert isinstance(partial, Unscored) and partial.kind == JUDGE_UNPARSED
    assert "item(s) [2]" in partial.message

    with chat_server("VERDICT: correct") as server:
        server.status = 400
        settings = JudgeSettings(base_url=server.url, model="m")
        failed = with_judge(settings, lambda j: j.equivalent("p", "1", "1"))
    assert isinstance(failed, Unscored) and failed.kind == JUDGE_FAILED
    assert "HTTP 400" in failed.message and "model overloaded" in failed.message


def test_a_dead_judge_server_is_unscored_not_a_crash() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens here
    settings = JudgeSettings(base_url=url, model="m")
    got = with_judge(settings, lambda j: j.grade("p", RUBRIC, "r"))
    assert isinstance(got, Unscored) and got.kind == JUDGE_FAILED
    assert got.message.startswith(f"the judge m at {url} failed: BackendError: cannot reach")


def test_no_judge_configured_opens_none() -> None:
    async def main() -> object:
        async with open_judge(None) as judge:
            return judge

    assert asyncio.run(main()) is None


# ---- the real judge: SmolLM2-135M on vLLM (CPU) -----------------------------------------------


@pytest.mark.vllm
def test_smollm2_judge_replies_and_each_reply_is_parsed_or_unscored(
    vllm_server: VLLMServer,
) -> None:
    settings = JudgeSettings(
        base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=48
    )

    async def ask(judge: Judge) -> tuple[object, object, object]:
        reply = await judge.ask("Say hello.")
        verdict = await judge.equivalent("What is 2 + 2?", "4", "4")
        grade = await judge.grade("What is 2 + 2?", RUBRIC[:1], "It is 4 by Peano's law.")
        return reply, verdict, grade

    reply, verdict, grade = with_judge(settings, ask)
    assert isinstance(reply, str) and reply.strip()  # the real server answered
    # SmolLM2's verdict may or may not follow the format: either it parsed, or it is unscored
    # as unparsed (never a crash, never a silent 0)
    for got in (verdict, grade):
        assert isinstance(got, Equivalence | RubricGrade | Unscored)
        if isinstance(got, Unscored):
            assert got.kind == JUDGE_UNPARSED and "reply:" in got.message


@pytest.mark.vllm
def test_smollm2_judge_cut_at_one_token_is_unparsed(vllm_server: VLLMServer) -> None:
    settings = JudgeSettings(
        base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=1
    )
    got = with_judge(settings, lambda j: j.equivalent("What is 2 + 2?", "4", "5"))
    assert isinstance(got, Unscored) and got.kind in (JUDGE_UNPARSED, JUDGE_EMPTY)


@pytest.mark.vllm
def test_a_prompt_beyond_the_judges_context_is_unscored(vllm_server: VLLMServer) -> None:
    settings = JudgeSettings(
        base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=16
    )
    long_problem = "Consider the pendulum. " * 2000  # far beyond max_model_len 2048
    got = with_judge(settings, lambda j: j.equivalent(long_problem, "4", "4"))
    assert isinstance(got, Unscored) and got.kind == JUDGE_FAILED and "HTTP 400" in got.message
