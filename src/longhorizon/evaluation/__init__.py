"""Evaluation: benchmark adapters, per-item results, bootstrap error bars, paired comparisons."""

from longhorizon.evaluation.stats import Estimate, bootstrap_mean, paired_difference

__all__ = ["Estimate", "bootstrap_mean", "paired_difference"]
