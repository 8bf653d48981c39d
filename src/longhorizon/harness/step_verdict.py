"""The per-step verdict v_t of a tool call, recorded on its step and in the KAG's actions.

v_t passes when the call was valid (it ran without an error) and its observation was useful:
informative (text that this episode has not already seen) or evidence-bearing (it consulted
an evidence node: the state references the tool reported). A repeated query, an empty result
or a malformed call fails it; `details` says which part did.
"""

from __future__ import annotations

from collections.abc import Sequence

from longhorizon.core.trajectory import Step, Verdict
from longhorizon.tools import ToolResult

STEP_VERIFIER = "step"

__all__ = ["STEP_VERIFIER", "step_verdict"]


def step_verdict(result: ToolResult, earlier: Sequence[Step]) -> Verdict:
    """v_t of a call that returned `result`, after the episode's `earlier` steps."""
    valid = result.error is None
    repeated = any(step.observation == result.content for step in earlier)
    informative = valid and bool(result.content.strip()) and not repeated
    evidence = len(result.refs) if valid else 0
    passed = valid and (informative or evidence > 0)
    details = {"valid": valid, "informative": informative, "evidence": evidence}
    return Verdict(verifier=STEP_VERIFIER, passed=passed, score=float(passed), details=details)
