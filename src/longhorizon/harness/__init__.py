"""The agent harness: episodes with tools over long horizons, recorded token-exact."""

from longhorizon.harness.agent import Agent, BackendAgent, ScriptedAgent
from longhorizon.harness.config import HarnessConfig
from longhorizon.harness.episode import EpisodeRunner, Limits, initial_messages
from longhorizon.harness.finalise import extract_answer, force_answer_prompt
from longhorizon.harness.rollout import RolloutReport, run_episode, run_rollouts, trajectory_id

__all__ = [
    "Agent",
    "BackendAgent",
    "EpisodeRunner",
    "HarnessConfig",
    "Limits",
    "RolloutReport",
    "ScriptedAgent",
    "extract_answer",
    "force_answer_prompt",
    "initial_messages",
    "run_episode",
    "run_rollouts",
    "trajectory_id",
]
