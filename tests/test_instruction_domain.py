"""The instruction domain: composed IFEval prompts, the conflict table, the constructive
expert (correct on every accepted task), long-context tasks whose answer needs both the
evidence and the injected rule, and episodes through the real harness."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer

from longhorizon.core import Status, Task
from longhorizon.domains.instruction import (
    ComposedPrompt,
    Constraint,
    InstructionLevel,
    answer_message,
    build_task,
    choice_letter,
    conflict,
    expert_response,
    expert_script,
    find_conflict,
    propose_instruction_tasks,
    propose_longcontext_task,
    propose_longcontext_tasks,
    propose_tasks,
    solve,
    strict_passes,
    verify_choice,
    verify_instruction,
    verify_task,
)
from longhorizon.domains.instruction import constraints as c
from longhorizon.domains.instruction.longcontext import MIN_DOCUMENT_WORDS
from longhorizon.domains.instruction.tasks import plain_answer
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.models.registry import resolve_model
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.acceptance import rejection_reasons
from longhorizon.tools import ToolSet
from longhorizon.verifiers.ifeval import INSTRUCTION_IDS

REQUEST = "Write an essay about urban beekeeping."


def content(task: Task) -> dict:
    """A task without its creation time, for determinism checks."""
    return task.model_dump(mode="json", exclude={"provenance": {"created_at"}})


def constraints_of(task: Task) -> tuple[Constraint, ...]:
    params = task.verifiers[0].params
    return tuple(
        Constraint(i, k)
        for i, k in zip(params["instruction_id_list"], params["kwargs"], strict=True)
    )


@pytest.fixture(scope="module")
def accepted() -> tuple[list[Task], float]:
    start = time.perf_counter()
    tasks = propose_instruction_tasks(200, seed=0)
    return tasks, time.perf_counter() - start


# ---- composition and conflicts ----------------------------------------------------------------


def test_an_easy_level_draws_one_instruction_and_short_answers() -> None:
    easy = InstructionLevel(max_instructions=1, max_response_chars=600, long_context_share=0.0)
    tasks = propose_tasks(30, seed=3, level=easy)
    assert {t.metadata["variant"] for t in tasks} == {"ifeval"}
    assert {len(t.verifiers[0].params["instruction_id_list"]) for t in tasks} == {1}
    assert max(len(expert_response(t)) for t in tasks) <= 600
    full = [t for t in propose_tasks(30, seed=3) if t.metadata["variant"] == "ifeval"]
    assert max(len(t.verifiers[0].params["instruction_id_list"]) for t in full) > 1
    # Informative only: the plain answer to the bare request fails; same stream otherwise.
    strict = easy.model_copy(update={"informative_only": True})
    kept = propose_tasks(30, seed=3, level=strict)
    assert not any(strict_passes(t, plain_answer(t)) for t in kept)
    trivial = [t for t in tasks if strict_passes(t, plain_answer(t))]
    assert trivial
    informative = [t.id for t in tasks if t not in trivial]
    assert informative == [t.id for t in kept[: len(informative)]]
    with pytest.raises(ValidationError, match="less than or equal to 4"):
        InstructionLevel(max_instructions=5)


def test_tasks_are_deterministic_in_the_seed() -> None:
    level = InstructionLevel(long_context_share=0.3)
    first, again = propose_tasks(6, seed=7, level=level), propose_tasks(6, seed=7, level=level)
    assert [content(t) for t in first] == [content(t) for t in again]
    assert {t.metadata["variant"] for t in first} == {"ifeval", "longcontext"}
    other = propose_tasks(6, seed=8, level=level)
    assert [t.id for t in other] != [t.id for t in first]


@pytest.mark.parametrize(
    ("a", "b", "request_text"),
    [
        (Constraint(c.UPPERCASE), Constraint(c.LOWERCASE), REQUEST),
        (Constraint(c.JSON_FORMAT), Constraint(c.TITLE), REQUEST),
        (
            Constraint(c.JSON_FORMAT),
            Constraint(c.POSTSCRIPT, {"postscript_marker": "P.S."}),
            REQUEST,
        ),
        (
            Constraint(c.LANGUAGE, {"language": "fr"}),
            Constraint(c.KEYWORDS_EXIST, {"keywords": ["river"]}),
            REQUEST,
        ),
        (
            Constraint(c.LOWERCASE),
            Constraint(c.SECTIONS, {"section_spliter": "Section", "num_sections": 2}),
            REQUEST,
        ),
        (
            Constraint(c.LOWERCASE),
            Constraint(c.CAPITAL_WORDS, {"capital_frequency": 2, "capital_relation": "at least"}),
            REQUEST,
        ),
        (
            Constraint(c.WORDS, {"num_words": 500, "relation": "at least"}),
            Constraint(c.SENTENCES, {"num_sentences": 3, "relation": "less than"}),
            REQUEST,
        ),
        (
            Constraint(c.REPEAT_PROMPT, {"prompt_to_repeat": "Hi, you."}),
            Constraint(c.NO_COMMA),
            "Hi, you.",
        ),
        (
            Constraint(c.END_PHRASE, {"end_phrase": "Is there anything else I can help with?"}),
            Constraint(c.FORBIDDEN, {"forbidden_words": ["help"]}),
            REQUEST,
        ),
        (
            Constraint(c.KEYWORDS_EXIST, {"keywords": ["river"]}),
            Constraint(
                c.KEYWORDS_FREQ, {"keyword": "river", "frequency": 1, "relation": "less than"}
            ),
            REQUEST,
        ),
    ],
)
def test_conflicting_pairs_are_rejected(a: Constraint, b: Constraint, request_text: str) -> None:
    assert conflict(a, b, request_text) is not None
    assert conflict(b, a, request_text) is not None


def test_compatible_pairs_pass() -> None:
    upper_sections = Constraint(c.SECTIONS, {"section_spliter": "SECTION", "num_sections": 2})
    assert conflict(Constraint(c.UPPERCASE), upper_sections, REQUEST) is None
    few_caps = Constraint(
        c.CAPITAL_WORDS, {"capital_frequency": 3, "capital_relation": "less than"}
    )
    assert conflict(Constraint(c.LOWERCASE), few_caps, REQUEST) is None
    assert (
        conflict(
            Constraint(c.REPEAT_PROMPT, {"prompt_to_repeat": REQUEST}),
            Constraint(c.NO_COMMA),
            REQUEST,
        )
        is None
    )


def test_200_tasks_are_conflict_free_and_the_expert_passes_every_strict_check(
    accepted: tuple[list[Task], float],
) -> None:
    tasks, seconds = accepted
    assert len(tasks) == 200 and len({t.id for t in tasks}) == 200
    assert seconds < 60, f"acceptance too slow: {200 / seconds:.1f} tasks/s"
    for task in tasks:
        request = task.metadata["request"]
        assert find_conflict(constraints_of(task), request) is None
        assert task.instruction.startswith(request + "\n\n")
        assert task.protocol.finalisation.kind == "last_message" and not task.protocol.tools
        assert task.provenance.generator and task.provenance.seed is not None
        for constraint in constraints_of(task):
            assert constraint.describe() in task.instruction
            if constraint.instruction_id == c.REPEAT_PROMPT:
                assert constraint.kwargs == {"prompt_to_repeat": request}
        response = expert_response(task)
        assert strict_passes(task, response)
    # Every one of the 25 instructions occurs among the accepted tasks.
    used = {i for t in tasks for i in t.verifiers[0].params["instruction_id_list"]}
    assert used == set(INSTRUCTION_IDS)


def test_expert_verdicts_pass_with_the_full_verifier(accepted: tuple[list[Task], float]) -> None:
    for task in accepted[0][:40]:
        verdicts = verify_instruction(task, expert_response(task))
        assert [v.verifier for v in verdicts[:-1]] == [
            f"ifeval:{i}" for i in task.verifiers[0].params["instruction_id_list"]
        ]
        assert verdicts[-1].verifier == "ifeval_all" and verdicts[-1].passed
        assert verdicts[-1].score == 1.0 and all(v.passed for v in verdicts)


# ---- verdicts on wrong responses --------------------------------------------------------------


def handmade_task() -> Task:
    constraints = (
        Constraint(c.NO_COMMA),
        Constraint(c.KEYWORDS_EXIST, {"keywords": ["river"]}),
        Constraint(c.TITLE),
        Constraint(c.WORDS, {"num_words": 5, "relation": "at least"}),
    )
    return build_task(ComposedPrompt("urban beekeeping", "essay", REQUEST, constraints), seed=11)


def test_a_wrong_response_fails_the_right_verdicts_with_exact_values() -> None:
    task = handmade_task()
    verdicts = verify_instruction(task, "Hello, there\nthe river runs fast")
    by_name = {v.verifier: v for v in verdicts}
    assert [v.passed for v in verdicts[:-1]] == [False, True, False, True]
    # Loosely, dropping the first line removes the comma; nothing rescues the title.
    assert [v.details["loose"] for v in verdicts[:-1]] == [True, True, False, True]
    total = by_name["ifeval_all"]
    assert (total.passed, total.score) == (False, 0.5)
    assert total.details["strict"] == [False, True, False, True]
    assert total.details["loose_all"] is False and total.details["loose_score"] == 0.75
    assert [v.passed for v in verify_instruction(task, None)] == [False] * 5
    assert all(v.passed for v in verify_instruction(task, expert_response(task)))


def test_choice_letters() -> None:
    task = Task(id="lc", domain="instruction", instruction="?", answer="B", verifiers=[])
    assert choice_letter("(b)") == "B" and choice_letter("B.") == "B"
    assert choice_letter("B and C") is None and choice_letter(None) is None
    assert [verify_choice(task, a)[0].passed for a in ("B", " b ", "C", "B or C", None)] == [
        True,
        True,
        False,
        False,
        False,
    ]


# ---- long context -----------------------------------------------------------------------------


def test_long_context_answers_need_the_rule_and_the_evidence() -> None:
    tasks = propose_longcontext_tasks(24, seed=3)
    assert {t.metadata["family"] for t in tasks} == {"scale", "stock", "marks"}
    for task in tasks:
        prompt, answer = task.instruction, task.answer
        ignored = task.metadata["ignore_rule_answer"]
        options = task.metadata["options"]
        assert answer in "ABCD" and ignored in "ABCD" and ignored != answer
        assert len(set(options)) == 4
        assert all(
            f"{letter}. {text}" in prompt for letter, text in zip("ABCD", options, strict=True)
        )
        assert task.metadata["document_words"] >= MIN_DOCUMENT_WORDS
        assert task.protocol.finalisation.kind == "answer_tag"
        assert task.protocol.finalisation.tag == "answer"
        assert solve(prompt).letter == answer  # type: ignore[union-attr]
        assert solve(prompt, apply_rules=False).letter == ignored  # type: ignore[union-attr]
        assert task.evidence == []  # in the prompt, not behind a tool: nothing to consult
        evidence_row, rule = task.metadata["evidence"]
        assert rule in prompt and evidence_row.splitlines()[0] in prompt
        # Without the rule, the reader lands on the rule-ignoring option.
        assert solve(prompt.replace(rule, "")).letter == ignored  # type: ignore[union-attr]


def test_the_reader_declines_prompts_without_a_report() -> None:
    assert solve("What is 2 + 3?") is None
    assert answer_message("Give your final answer now.").endswith("<answer>?</answer>")


def test_long_context_tasks_are_deterministic() -> None:
    for seed in range(5):
        first, again = propose_longcontext_task(seed), propose_longcontext_task(seed)
        assert (first is None) == (again is None)
        if first is not None and again is not None:
            assert content(first) == content(again)


# ---- end to end through the harness -----------------------------------------------------------


def test_episodes_through_the_harness(tmp_path: Path) -> None:
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(resolve_model("tiny-llama")))
    instruction = propose_instruction_tasks(5, seed=21)
    long_context = propose_longcontext_tasks(3, seed=21)

    async def run_all() -> list:
        results = []
        for index, task in enumerate(instruction + long_context):
            runner = EpisodeRunner(
                ScriptedAgent(renderer, expert_script(task)),
                lambda t: ToolSet([]),
                HarnessConfig(workdir=tmp_path),
                verify=verify_task,
            )
            results.append(await runner.run(task, f"episode-{index}"))
        return results

    trajectories = asyncio.run(run_all())
    assert len(trajectories) == 8
    for trajectory in trajectories:
        assert trajectory.status is Status.COMPLETED, trajectory.status_reason
        assert trajectory.passed, [v for v in trajectory.verdicts if not v.passed]
        assert trajectory.usage.model_calls == 1
    for task, trajectory in zip(instruction, trajectories[:5], strict=True):
        assert trajectory.final_answer == expert_response(task)
        assert trajectory.verdicts[-1].verifier == "ifeval_all"
    for task, trajectory in zip(long_context, trajectories[5:], strict=True):
        assert trajectory.final_answer == task.answer
        assert trajectory.verdicts[0].verifier == "choice"
    # The self-play acceptance rules find nothing to reject.
    for task, trajectory in zip(instruction + long_context, trajectories, strict=True):
        assert rejection_reasons(task, trajectory, None, 0) == []
