"""An offline stand-in for "does the response start with a verb?" (`words:start_verb`).

The reference tags the response's first NLTK token with NLTK's averaged-perceptron POS
tagger and passes when the tag contains "VB". That tagger's weights are model data that
cannot be installed here, so this module asks a lexicon instead: the first token (NLTK's
``word_tokenize``, as the reference) must have a verb reading in LemmInflect's English
lexicon and no noun reading. Words that can be either ("Build", "Love", "Title") are
taken as nouns here; modals are excluded because Penn's tag for them is MD, not VB.
This is an approximation: the README and the reference test report how often it agrees.
"""

from __future__ import annotations

import functools
from typing import Any

from longhorizon.verifiers.ifeval.nlp import IFEvalDependencyError, word_tokenize

_MODALS = frozenset(["can", "could", "may", "might", "must", "shall", "should", "will", "would"])


@functools.cache
def _lemmas() -> Any:
    try:
        from lemminflect import getAllLemmas
    except ImportError as error:
        raise IFEvalDependencyError(
            "IFBench's words:start_verb needs the PyPI package 'lemminflect' "
            f"(`pip install lemminflect`): {error}"
        ) from error
    return getAllLemmas


def is_verb_form(word: str) -> bool:
    """A verb (or auxiliary) in the lexicon, with no noun reading, and not a modal."""
    word = word.lower()
    readings = _lemmas()(word)
    has_verb = "VERB" in readings or "AUX" in readings
    return has_verb and "NOUN" not in readings and word not in _MODALS


def starts_with_verb(response: str) -> bool:
    tokens = word_tokenize(response)
    return bool(tokens) and is_verb_form(tokens[0])
