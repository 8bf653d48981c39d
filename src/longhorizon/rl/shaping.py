"""Reward shaping over a rollout's tool steps (the report's search reward, our constants).

The report shapes the search reward with an efficiency penalty beyond K rounds, a capped
repetition penalty over a sliding window of queries and URLs, and a format reward, but gives
no constants; the defaults of `Shaping` are ours. With `s` the rollout's tool steps:

    rounds    = number of model turns that made tool calls (parse errors included)
    repeats   = calls equal (same tool, same normalised arguments) to one of the previous
                `repeat_window` calls
    parsed    = share of the calls that parsed (0 when the rollout made none)
    shaped    = correctness
                + format_weight * parsed
                - round_penalty * max(0, rounds - rounds_free)
                - min(repeat_cap, repeat_penalty * repeats)

A call the harness could not parse is recorded as a step named `invalid` (harness/episode.py).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core import Trajectory

__all__ = ["INVALID_CALL", "Shaping", "ShapingTerms", "shaping_terms"]

INVALID_CALL = "invalid"  # the harness's name for a tool call it could not parse


class Shaping(BaseModel):
    """Constants of the shaped reward (defaults: our choice; the report gives none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    domains: tuple[str, ...] = Field(default=("search",), description="rollouts shaped")
    rounds_free: int = Field(default=8, ge=0, description="K: tool rounds without penalty")
    round_penalty: float = Field(default=0.02, ge=0, description="per round beyond K")
    repeat_window: int = Field(default=4, ge=1, description="calls looked back at")
    repeat_penalty: float = Field(default=0.05, ge=0, description="per repeated call")
    repeat_cap: float = Field(default=0.2, ge=0, description="largest repetition penalty")
    format_weight: float = Field(default=0.1, ge=0, description="times the parsed share")


class ShapingTerms(BaseModel):
    """The counts behind a shaped reward and the amount it adds (for logs and tests)."""

    rounds: int
    repeats: int
    parsed: float
    bonus: float


def _normalised(arguments: str) -> str:
    """Arguments as compared for repetition: parsed JSON, strings folded, keys sorted."""
    try:
        value: Any = json.loads(arguments)
    except json.JSONDecodeError:
        return arguments.strip().lower()
    return json.dumps(_fold(value), sort_keys=True)


def _fold(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.lower().split())
    if isinstance(value, dict):
        return {k: _fold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


def shaping_terms(traj: Trajectory, shaping: Shaping) -> ShapingTerms:
    """What `shaping` adds to the correctness reward of `traj` (see the module's formula)."""
    steps = traj.steps
    rounds = len({s.call_index for s in steps})
    recent: deque[tuple[str, str]] = deque(maxlen=shaping.repeat_window)
    repeats = 0
    for step in steps:
        if step.action.function.name == INVALID_CALL:
            continue
        key = (step.action.function.name, _normalised(step.action.function.arguments))
        repeats += key in recent
        recent.append(key)
    valid = sum(s.action.function.name != INVALID_CALL for s in steps)
    parsed = valid / len(steps) if steps else 0.0
    bonus = (
        shaping.format_weight * parsed
        - shaping.round_penalty * max(0, rounds - shaping.rounds_free)
        - min(shaping.repeat_cap, shaping.repeat_penalty * repeats)
    )
    return ShapingTerms(rounds=rounds, repeats=repeats, parsed=parsed, bonus=bonus)
