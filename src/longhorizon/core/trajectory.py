"""A trajectory tau = [(s_1, a_1, o_1, v_1) ... (s_T, a_T, o_T, v_T), y] with its token record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from longhorizon.core.messages import Message, ToolCall
from longhorizon.core.provenance import RunProvenance
from longhorizon.core.task import SCHEMA_VERSION
from longhorizon.core.tokens import ModelCall, TokenSequence, call_sequence, leaf_calls


class Status(StrEnum):
    COMPLETED = "COMPLETED"  # finished with a final answer
    TRUNCATED = "TRUNCATED"  # a budget was reached; kept as a valid prefix
    ABORTED = "ABORTED"  # infrastructure failure; the caller retries it
    FAILED = "FAILED"  # the episode ran but could not produce an answer


class Verdict(BaseModel):
    """One verifier's outcome v_t (per step) or on the final answer."""

    verifier: str
    passed: bool
    score: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict)


class Step(BaseModel):
    """One action record: state references s_t, the tool call a_t, observation o_t, verdict v_t."""

    index: int
    call_index: int | None = None
    state_refs: list[str] = Field(default_factory=list)
    action: ToolCall
    observation: str
    error: str | None = None
    verdict: Verdict | None = None
    duration_s: float = 0.0


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0


class Timings(BaseModel):
    started_at: datetime | None = None
    ended_at: datetime | None = None
    model_s: float = 0.0
    tools_s: float = 0.0


class Trajectory(BaseModel):
    schema_version: int = SCHEMA_VERSION
    id: str
    task_id: str
    domain: str
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    final_answer: str | None = None
    verdicts: list[Verdict] = Field(default_factory=list)
    status: Status = Status.COMPLETED
    status_reason: str | None = None
    calls: list[ModelCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    timings: Timings = Field(default_factory=Timings)
    provenance: RunProvenance
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when there is at least one verdict and every verdict passed."""
        return bool(self.verdicts) and all(v.passed for v in self.verdicts)

    def token_sequences(self) -> list[TokenSequence]:
        """The training sequences (one per leaf call; one in total for a linear episode)."""
        return [call_sequence(self.calls, i) for i in leaf_calls(self.calls)]


def longest_turn(trajectory: Trajectory) -> int:
    """Completion tokens of the trajectory's longest model call (0: none): what a per-turn
    budget must hold for a model to write the same turns."""
    return max((len(c.completion_ids) for c in trajectory.calls), default=0)
