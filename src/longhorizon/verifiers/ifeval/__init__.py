"""IFEval: the 25 verifiable-instruction checkers, strict and loose verdicts, and a scorer.

Each checker is written from the instruction descriptions in the IFEval paper (Zhou et
al., 2023) and matches the reference scorer's verdicts on its published GPT-4 responses.
"""

from longhorizon.verifiers.ifeval.base import Instruction, Relation
from longhorizon.verifiers.ifeval.evaluation import (
    PromptResult,
    evaluate_prompt,
    follows_loose,
    follows_strict,
    loose_variants,
)
from longhorizon.verifiers.ifeval.nlp import IFEvalDependencyError
from longhorizon.verifiers.ifeval.registry import (
    INSTRUCTION_IDS,
    INSTRUCTIONS,
    UnknownInstructionError,
    build_checker,
    describe,
    sample_kwargs,
)
from longhorizon.verifiers.ifeval.scorer import (
    Accuracy,
    IFEvalReport,
    score_responses,
    write_items_jsonl,
)

__all__ = [
    "INSTRUCTIONS",
    "INSTRUCTION_IDS",
    "Accuracy",
    "IFEvalDependencyError",
    "IFEvalReport",
    "Instruction",
    "PromptResult",
    "Relation",
    "UnknownInstructionError",
    "build_checker",
    "describe",
    "evaluate_prompt",
    "follows_loose",
    "follows_strict",
    "loose_variants",
    "sample_kwargs",
    "score_responses",
    "write_items_jsonl",
]
