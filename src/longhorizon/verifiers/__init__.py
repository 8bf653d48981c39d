"""Verifiers: domain-agnostic checks (exact match, IFEval). Each domain's one `verify`
(`longhorizon.domains`) combines them; it serves evaluation, rewards and synthesis alike."""

from longhorizon.verifiers.answer import exact_match, normalise_answer, verify_answer

__all__ = ["exact_match", "normalise_answer", "verify_answer"]
