"""Per-step verdicts v_t: a valid call with a new or evidence-bearing observation passes."""

from __future__ import annotations

from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.core.trajectory import Step
from longhorizon.harness.step_verdict import STEP_VERIFIER, step_verdict
from longhorizon.tools import ToolResult


def _step(observation: str, index: int = 0) -> Step:
    call = ToolCall(id=f"c{index}", function=FunctionCall(name="search", arguments="{}"))
    return Step(index=index, action=call, observation=observation)


def test_a_new_observation_passes_and_a_repeat_fails_unless_it_bears_evidence() -> None:
    earlier = [_step("1. Varo (city)")]
    new = step_verdict(ToolResult(content="2. Lund (city)"), earlier)
    assert (new.verifier, new.passed, new.score) == (STEP_VERIFIER, True, 1.0)
    assert new.details == {"valid": True, "informative": True, "evidence": 0}
    repeat = step_verdict(ToolResult(content="1. Varo (city)"), earlier)
    assert not repeat.passed
    assert repeat.details == {"valid": True, "informative": False, "evidence": 0}
    cited = step_verdict(ToolResult(content="1. Varo (city)", refs=["page-7"]), earlier)
    assert cited.passed and cited.details == {"valid": True, "informative": False, "evidence": 1}


def test_an_error_or_an_empty_observation_fails() -> None:
    broken = step_verdict(ToolResult(content="Error: no page", error="no page", refs=["p"]), [])
    assert not broken.passed
    assert broken.details == {"valid": False, "informative": False, "evidence": 0}
    empty = step_verdict(ToolResult(content="  \n"), [])
    assert not empty.passed and empty.details["valid"] and not empty.details["informative"]
