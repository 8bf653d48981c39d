"""Core data model: JSON round trips, schema version, token reconstruction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from longhorizon.core import (
    FunctionCall,
    Message,
    ModelCall,
    Protocol,
    RunProvenance,
    SamplingParams,
    Status,
    Step,
    Task,
    ToolCall,
    Trajectory,
    Verdict,
    VerifierSpec,
    call_prompt,
    call_sequence,
    leaf_calls,
)

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def make_trajectory() -> Trajectory:
    call = ToolCall(id="c0", function=FunctionCall(name="search", arguments='{"query": "x"}'))
    return Trajectory(
        id="t1",
        task_id="q1",
        domain="search",
        messages=[
            Message(role="user", content="q"),
            Message(role="assistant", content="<tool_call>...</tool_call>", tool_calls=[call]),
            Message(role="tool", content="obs", tool_call_id="c0"),
            Message(role="assistant", content="<answer>y</answer>"),
        ],
        steps=[Step(index=0, call_index=0, state_refs=["doc:1"], action=call, observation="obs")],
        final_answer="y",
        verdicts=[Verdict(verifier="exact_match", passed=True, score=1.0)],
        calls=[
            ModelCall(new_prompt_ids=[1, 2, 3], completion_ids=[4, 5]),
            ModelCall(parent=0, prefix_len=5, new_prompt_ids=[6, 7], completion_ids=[8, 9, 10]),
        ],
        provenance=RunProvenance(
            model="m", backend="hf", sampling=SamplingParams(seed=3), created_at=CREATED
        ),
    )


def test_task_round_trip_keeps_every_field() -> None:
    task = Task(
        id="q1",
        domain="search",
        instruction="Who founded X?",
        answer="Y",
        evidence=["page:1", "page:7"],
        verifiers=[VerifierSpec(name="exact_match", params={"normalise": True})],
        protocol=Protocol(tools=("search", "visit")),
    )
    again = Task.model_validate_json(task.model_dump_json())
    assert again == task
    assert again.schema_version == 1
    assert again.protocol.budgets.max_turns == 30


def test_trajectory_round_trip_and_passed() -> None:
    traj = make_trajectory()
    again = Trajectory.model_validate_json(traj.model_dump_json())
    assert again == traj
    assert again.passed is True
    assert again.status is Status.COMPLETED


def test_trajectory_without_verdicts_has_not_passed() -> None:
    assert make_trajectory().model_copy(update={"verdicts": []}).passed is False


def test_token_sequences_rebuild_prompts_and_masks() -> None:
    calls = make_trajectory().calls
    assert call_prompt(calls, 1).input_ids == [1, 2, 3, 4, 5, 6, 7]
    assert call_prompt(calls, 1).loss_mask == [0, 0, 0, 1, 1, 0, 0]
    full = call_sequence(calls, 1)
    assert full.input_ids == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert full.loss_mask == [0, 0, 0, 1, 1, 0, 0, 1, 1, 1]
    assert leaf_calls(calls) == [1]


def test_a_restarted_context_gives_two_training_sequences() -> None:
    calls = [
        ModelCall(new_prompt_ids=[1], completion_ids=[2]),
        ModelCall(new_prompt_ids=[3], completion_ids=[4]),  # fresh context: no parent
    ]
    assert leaf_calls(calls) == [0, 1]
    seqs = make_trajectory().model_copy(update={"calls": calls}).token_sequences()
    assert [s.input_ids for s in seqs] == [[1, 2], [3, 4]]


def test_bad_parent_reference_is_rejected() -> None:
    calls = [ModelCall(parent=0, prefix_len=1, new_prompt_ids=[1], completion_ids=[2])]
    with pytest.raises(ValueError, match="later parent"):
        call_prompt(calls, 0)


def test_message_rejects_unknown_role_and_fields() -> None:
    with pytest.raises(ValidationError):
        Message(role="robot", content="x")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Message(role="user", content="x", colour="red")  # type: ignore[call-arg]


def test_function_arguments_errors_name_the_text() -> None:
    assert FunctionCall(name="f", arguments='{"a": 1}').parsed_arguments() == {"a": 1}
    with pytest.raises(ValueError, match="not valid JSON"):
        FunctionCall(name="f", arguments="{a:1").parsed_arguments()
    with pytest.raises(ValueError, match="must be a JSON object"):
        FunctionCall(name="f", arguments="[1]").parsed_arguments()


def test_sampling_params_validate() -> None:
    assert SamplingParams(temperature=0).greedy
    with pytest.raises(ValidationError):
        SamplingParams(top_p=0)
