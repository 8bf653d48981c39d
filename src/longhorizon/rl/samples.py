"""Rollout groups -> rewards, advantages and the token-level samples the loss trains on.

A group is the G rollouts of one prompt. Each rollout's training sequences come from
`Trajectory.token_sequences()` (loss mask 1 only on model-generated tokens; tool observations
and prompts are 0), and the sampler's per-token logprobs, recorded with every model call, are
laid out on the same positions: they are pi_old.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from longhorizon.core import Status, Trajectory
from longhorizon.core.tokens import ModelCall, leaf_calls
from longhorizon.rl.config import GRPOObjective
from longhorizon.rl.objective import group_advantages

__all__ = [
    "RLSample",
    "group_samples",
    "informative",
    "mixed_outcome",
    "rollout_reward",
    "sequence_logprobs",
]


@dataclass(frozen=True)
class RLSample:
    """One training sequence: exact ids, 0/1 loss mask, the sampler's logprob at each position
    (0 where the model did not generate), and its rollout's advantage."""

    domain: str
    input_ids: list[int]
    loss_mask: list[int]
    engine_logprobs: list[float]
    advantage: float
    trajectory_id: str = ""


def sequence_logprobs(calls: list[ModelCall], index: int) -> list[float]:
    """Sampler logprobs aligned with `call_sequence(calls, index)` (0 on prompt tokens)."""
    call = calls[index]
    if call.completion_logprobs is None or len(call.completion_logprobs) != len(
        call.completion_ids
    ):
        raise ValueError(f"call {index} has no per-token logprobs: the backend must return them")
    prefix = [] if call.parent is None else sequence_logprobs(calls, call.parent)
    prompt = prefix[: call.prefix_len] + [0.0] * len(call.new_prompt_ids)
    return prompt + list(call.completion_logprobs)


def rollout_reward(traj: Trajectory, objective: GRPOObjective) -> float | None:
    """1 when every verdict passed, else 0; a TRUNCATED rollout follows `objective.overlong`
    (None: masked, it carries no loss and leaves the group's statistics)."""
    if traj.status is Status.TRUNCATED:
        if objective.overlong == "mask":
            return None
        if objective.overlong == "penalise":
            return objective.overlong_penalty
    return 1.0 if traj.passed else 0.0


def informative(rewards: list[float | None]) -> bool:
    """At least two valid rewards, not all equal: the group has a non-zero advantage."""
    kept = [r for r in rewards if r is not None]
    return len(kept) >= 2 and len(set(kept)) > 1


def mixed_outcome(passed: list[bool]) -> bool:
    """The prompt-pool filter: attempts with the starting policy gave both outcomes."""
    return any(passed) and not all(passed)


def group_samples(group: list[Trajectory], objective: GRPOObjective) -> list[RLSample]:
    """The training sequences of one group, each with its rollout's advantage (masked rollouts
    and sequences without a generated token are left out)."""
    rewards = [rollout_reward(t, objective) for t in group]
    valid = torch.tensor([r is not None for r in rewards])
    values = torch.tensor([0.0 if r is None else r for r in rewards], dtype=torch.float64)
    adv = group_advantages(values, valid, objective.advantage_eps, objective.scale_by_std)
    out = []
    for traj, a, ok in zip(group, adv.tolist(), valid.tolist(), strict=True):
        if not ok:
            continue
        for seq, leaf in zip(traj.token_sequences(), leaf_calls(traj.calls), strict=True):
            if any(seq.loss_mask[1:]):
                logprobs = sequence_logprobs(traj.calls, leaf)
                out.append(
                    RLSample(traj.domain, seq.input_ids, seq.loss_mask, logprobs, a, traj.id)
                )
    return out
