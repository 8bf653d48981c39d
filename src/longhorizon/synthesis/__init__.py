"""Self-play task synthesis: proposers, the five acceptance rules, decontamination."""

from longhorizon.synthesis.acceptance import consulted, rejection_reasons
from longhorizon.synthesis.decontam import ContaminationIndex, Hit, default_benchmark_dir
from longhorizon.synthesis.selfplay import SelfPlay, SynthConfig, SynthReport
from longhorizon.synthesis.types import Domain, Proposer

__all__ = [
    "ContaminationIndex",
    "Domain",
    "Hit",
    "Proposer",
    "SelfPlay",
    "SynthConfig",
    "SynthReport",
    "consulted",
    "default_benchmark_dir",
    "rejection_reasons",
]
