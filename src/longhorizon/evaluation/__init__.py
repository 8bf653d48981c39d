"""Evaluation: benchmark adapters, per-item results, bootstrap error bars, paired comparisons.

Entry points for a pipeline: `evaluate_model` (opens a model on a backend) or
`evaluate_agent` (an agent already open), `load_results`, and `compare_dirs`. Adapters live
in `ifeval`, `ifbench`, `molbench`, `hipho`, `frontierscience`, ...; each registered domain's
held-out bench is built by `heldout.heldout_bench(spec)` (see `bench.Bench` and
`runner.benches`). Answers no verifier can check go to an LLM judge (`judge`); an item it
cannot score is recorded as unscored, never as a zero.
"""

from longhorizon.evaluation.options import EvalOptions, sampling_for_seed
from longhorizon.evaluation.stats import Estimate, bootstrap_mean, paired_difference
from longhorizon.evaluation.types import BenchResult, ItemResult, MetricResult

__all__ = [
    "BenchResult",
    "Estimate",
    "EvalOptions",
    "ItemResult",
    "MetricResult",
    "bootstrap_mean",
    "paired_difference",
    "sampling_for_seed",
]
