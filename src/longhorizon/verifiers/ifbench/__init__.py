"""IFBench: the 58 out-of-distribution instruction checkers, strict and loose, and a scorer.

Each checker is written from the instruction's wording in IFBench's test set (Pyatkin et
al., 2025); where the wording leaves a choice open, the behaviour follows IFBench's own
scorer at commit c94da020, the one behind the reference verdicts our tests compare with.
Loose verdicts use IFEval's eight response variants. One checker, `words:start_verb`,
approximates a statistical POS tagger with a lexicon (`verbs`).
"""

from longhorizon.verifiers.ifbench.base import Checker
from longhorizon.verifiers.ifbench.registry import (
    INSTRUCTION_IDS,
    INSTRUCTIONS,
    MODEL_BASED,
    UnknownInstructionError,
    build_checker,
    describe,
)
from longhorizon.verifiers.ifbench.scorer import (
    evaluate_prompt,
    load_inputs,
    load_responses,
    score_inputs,
    score_responses,
)
from longhorizon.verifiers.ifbench.sentences import split_into_sentences

__all__ = [
    "INSTRUCTIONS",
    "INSTRUCTION_IDS",
    "MODEL_BASED",
    "Checker",
    "UnknownInstructionError",
    "build_checker",
    "describe",
    "evaluate_prompt",
    "load_inputs",
    "load_responses",
    "score_inputs",
    "score_responses",
    "split_into_sentences",
]
