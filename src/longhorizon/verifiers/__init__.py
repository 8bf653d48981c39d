"""Verifiers: one check serves evaluation (metric), training (reward) and synthesis (filter)."""

from longhorizon.verifiers.answer import exact_match, normalise_answer, verify_answer

__all__ = ["exact_match", "normalise_answer", "verify_answer"]
