"""Scale-out: the spec every rollout worker builds its runner from; Ray workers and the driver
that stores their episodes exactly once live in `ray_rollouts` (Ray is an optional extra)."""

from longhorizon.scaleout.spec import EpisodeRules, RolloutSpec, RulesFor, open_runner

__all__ = ["EpisodeRules", "RolloutSpec", "RulesFor", "open_runner"]
