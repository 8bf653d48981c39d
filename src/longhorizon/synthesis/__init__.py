"""Self-play task synthesis: proposers, the five acceptance rules, decontamination."""

from longhorizon.synthesis.acceptance import consulted, rejection_reasons
from longhorizon.synthesis.decontam import ContaminationIndex, Hit, benchmark_index
from longhorizon.synthesis.run import DomainBuilder, run_synthesis
from longhorizon.synthesis.selfplay import SelfPlay, SynthConfig, SynthReport
from longhorizon.synthesis.table import print_report
from longhorizon.synthesis.types import Domain, Proposer

__all__ = [
    "ContaminationIndex",
    "Domain",
    "DomainBuilder",
    "Hit",
    "Proposer",
    "SelfPlay",
    "SynthConfig",
    "SynthReport",
    "benchmark_index",
    "consulted",
    "print_report",
    "rejection_reasons",
    "run_synthesis",
]
