"""Rollout groups -> rewards, advantages and the token-level samples the loss trains on.

A group is the G rollouts of one prompt. Each rollout's training sequences come from
`Trajectory.token_sequences()` (loss mask 1 only on model-generated tokens; tool observations
and prompts are 0), and the sampler's per-token logprobs, recorded with every model call, are
laid out on the same positions: they are pi_old.

Rewards read the verdicts of the domain's one verifier; `VerdictKinds` says which of a
domain's verdicts summarise others (left out of the `fraction` reward) and which are rubric
checks over the trajectory's steps (PAPO's process reward, never part of the outcome).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from longhorizon.core import Status, Trajectory
from longhorizon.core.tokens import leaf_calls, sequence_logprobs
from longhorizon.rl.config import GRPOObjective
from longhorizon.rl.objective import group_advantages, papo_advantages
from longhorizon.rl.shaping import shaping_terms

__all__ = [
    "NO_KINDS",
    "RLSample",
    "VerdictKinds",
    "group_samples",
    "informative",
    "mixed_outcome",
    "process_reward",
    "rollout_advantages",
    "rollout_reward",
    "sequence_logprobs",
]


@dataclass(frozen=True)
class VerdictKinds:
    """A domain's verdict names by role: `summaries` aggregate other verdicts (instruction's
    "ifeval_all"), `rubric` are checks over the trajectory's steps (the process reward)."""

    summaries: frozenset[str] = frozenset()
    rubric: frozenset[str] = frozenset()


NO_KINDS = VerdictKinds()
KindsByDomain = Mapping[str, VerdictKinds]


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
    # The trainer's logprobs before the step's first update (laid out as `engine_logprobs`),
    # read when a step makes several updates; None: the current policy's (one update).
    trainer_logprobs: list[float] | None = None


def rollout_reward(
    traj: Trajectory, objective: GRPOObjective, kinds: VerdictKinds = NO_KINDS
) -> float | None:
    """`objective.reward` of the verdicts (rubric checks left out): `all` 1 when every one
    passed, else 0; `fraction` the share of constraint verdicts passed (summaries left out).
    A TRUNCATED rollout follows `objective.overlong` (None: masked, it carries no loss and
    leaves the group's statistics). `objective.shaping` adds its terms to the rollouts of the
    domains it names (`rl/shaping.py`)."""
    reward = _correctness(traj, objective, kinds)
    shaping = objective.shaping
    if reward is None or shaping is None or traj.domain not in shaping.domains:
        return reward
    return reward + shaping_terms(traj, shaping).bonus


def _correctness(traj: Trajectory, objective: GRPOObjective, kinds: VerdictKinds) -> float | None:
    if traj.status is Status.TRUNCATED:
        if objective.overlong == "mask":
            return None
        if objective.overlong == "penalise":
            return objective.overlong_penalty
    answer = [v for v in traj.verdicts if v.verifier not in kinds.rubric]
    if objective.reward == "all":
        return 1.0 if answer and all(v.passed for v in answer) else 0.0
    parts = [v for v in answer if v.verifier not in kinds.summaries]
    return sum(v.passed for v in parts) / len(parts) if parts else 0.0


def process_reward(traj: Trajectory, kinds: VerdictKinds) -> float | None:
    """The share of the rubric checks that passed; None when the verdicts hold none."""
    checks = [v.passed for v in traj.verdicts if v.verifier in kinds.rubric]
    return sum(checks) / len(checks) if checks else None


def rollout_advantages(
    group: list[Trajectory], objective: GRPOObjective, kinds: KindsByDomain | None = None
) -> tuple[list[float], list[bool]]:
    """Each rollout's advantage (`objective.advantage`) and whether it is valid (not masked)."""
    of = [(kinds or {}).get(t.domain, NO_KINDS) for t in group]
    rewards = [rollout_reward(t, objective, k) for t, k in zip(group, of, strict=True)]
    valid = torch.tensor([r is not None for r in rewards])
    values = torch.tensor([0.0 if r is None else r for r in rewards], dtype=torch.float64)
    if objective.advantage == "grpo":
        adv = group_advantages(values, valid, objective.advantage_eps, objective.scale_by_std)
        return adv.tolist(), valid.tolist()
    process = [process_reward(t, k) for t, k in zip(group, of, strict=True)]
    missing = sorted({t.domain for t, p in zip(group, process, strict=True) if p is None})
    if missing:
        raise ValueError(
            f"objective.advantage = papo needs rubric checks: rollouts of {missing} have none"
        )
    process_G = torch.tensor(process, dtype=torch.float64)
    adv = papo_advantages(
        values, process_G, valid, objective.process_weight, objective.advantage_eps
    )
    return adv.tolist(), valid.tolist()


def informative(advantages: list[float]) -> bool:
    """The group teaches something: some rollout has a non-zero advantage (GRPO: at least two
    valid rewards, not all equal; PAPO: that, or failures whose processes differ)."""
    return any(a != 0 for a in advantages)


def mixed_outcome(passed: list[bool]) -> bool:
    """The prompt-pool filter: attempts with the starting policy gave both outcomes."""
    return any(passed) and not all(passed)


def group_samples(
    group: list[Trajectory], objective: GRPOObjective, kinds: KindsByDomain | None = None
) -> list[RLSample]:
    """The training sequences of one group, each with its rollout's advantage (masked rollouts
    and sequences without a generated token are left out)."""
    adv, valid = rollout_advantages(group, objective, kinds)
    out = []
    for traj, a, ok in zip(group, adv, valid, strict=True):
        if not ok:
            continue
        for seq, leaf in zip(traj.token_sequences(), leaf_calls(traj.calls), strict=True):
            if any(seq.loss_mask[1:]):
                logprobs = sequence_logprobs(traj.calls, leaf)
                out.append(
                    RLSample(traj.domain, seq.input_ids, seq.loss_mask, logprobs, a, traj.id)
                )
    return out
