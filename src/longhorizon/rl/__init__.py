"""Stage 2 RL: GRPO teachers trained on multi-turn tool rollouts with verifier rewards.

- config:    RLConfig, RLRolloutConfig, GRPOObjective
- objective: the loss terms as pure functions (advantages, clipped surrogate, k3 KL, entropy,
             truncated IS, batch aggregation)
- samples:   rewards and the token-level samples of a group (sampler logprobs are pi_old)
- groups:    dynamic sampling and the mixed-outcome prompt pre-filter
- step:      one optimizer update on the batch objective
- grpo:      the trainer (setup / train / cleanup) and `run_rl`
"""

from longhorizon.rl.config import GRPOObjective, RLConfig, RLRolloutConfig
from longhorizon.rl.groups import GroupStats, keep_mixed_outcome, sample_groups
from longhorizon.rl.grpo import GRPOTrainer, run_rl
from longhorizon.rl.samples import (
    RLSample,
    VerdictKinds,
    group_samples,
    process_reward,
    rollout_reward,
)

__all__ = [
    "GRPOObjective",
    "GRPOTrainer",
    "GroupStats",
    "RLConfig",
    "RLRolloutConfig",
    "RLSample",
    "VerdictKinds",
    "group_samples",
    "keep_mixed_outcome",
    "process_reward",
    "rollout_reward",
    "run_rl",
    "sample_groups",
]
