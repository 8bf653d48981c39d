"""The rule-based sentence splitter IFBench's checkers use (not Punkt).

IFBench (at the reference commit) splits sentences with the regular-expression splitter
that IFEval's utilities also carry: periods in titles, abbreviations, decimals, web
domains, initials and ellipses are protected, quotes are moved inside the sentence end,
and the text is cut after every remaining ``.``, ``?`` and ``!``. The steps below are the
same rewrites, in the same order, so sentence counts match the reference scorer exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_PRD, _STOP = "<prd>", "<stop>"  # a protected period; a sentence boundary
_LETTER = "([A-Za-z])"
_TITLE = "(Mr|St|Mrs|Ms|Dr)[.]"
_COMPANY = "(Inc|Ltd|Jr|Sr|Co)"
_OPENER = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s"
    r"|However\s|That\s|This\s|Wherever)"
)
_ACRONYM = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_DOMAIN = "[.](com|net|org|io|gov|edu|me)"


def _ellipsis(match: re.Match[str]) -> str:
    return _PRD * len(match.group(0)) + _STOP


_Rewrite = tuple[str, str | Callable[[re.Match[str]], str]]

# Applied in order; "\\1<prd>" keeps the captured letter and protects its period.
_REWRITES: tuple[_Rewrite, ...] = (
    (_TITLE, rf"\1{_PRD}"),
    (_DOMAIN, rf"{_PRD}\1"),
    ("([0-9])[.]([0-9])", rf"\1{_PRD}\2"),
    (r"\.{2,}", _ellipsis),
)
_INITIALS: tuple[_Rewrite, ...] = (
    (r"\s" + _LETTER + "[.] ", rf" \1{_PRD} "),
    (_ACRONYM + " " + _OPENER, rf"\1{_STOP} \2"),
    (_LETTER + "[.]" + _LETTER + "[.]" + _LETTER + "[.]", rf"\1{_PRD}\2{_PRD}\3{_PRD}"),
    (_LETTER + "[.]" + _LETTER + "[.]", rf"\1{_PRD}\2{_PRD}"),
    (" " + _COMPANY + "[.] " + _OPENER, rf" \1{_STOP} \2"),
    (" " + _COMPANY + "[.]", rf" \1{_PRD}"),
    (" " + _LETTER + "[.]", rf" \1{_PRD}"),
)
# A sentence end inside closing quotes moves outside them, so the quote stays in.
_QUOTE_SWAPS = ((".”", "”."), ('."', '".'), ('!"', '"!'), ('?"', '"?'))


def _apply(text: str, rewrites: tuple[_Rewrite, ...]) -> str:
    for pattern, replacement in rewrites:
        text = re.sub(pattern, replacement, text)
    return text


def split_into_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped; a trailing empty piece is dropped."""
    text = (" " + text + "  ").replace("\n", " ")
    text = _apply(text, _REWRITES)
    text = text.replace("Ph.D.", f"Ph{_PRD}D{_PRD}")
    text = _apply(text, _INITIALS)
    for before, after in _QUOTE_SWAPS:
        text = text.replace(before, after)
    for mark in ".?!":
        text = text.replace(mark, mark + _STOP)
    sentences = [piece.strip() for piece in text.replace(_PRD, ".").split(_STOP)]
    if sentences and not sentences[-1]:
        sentences.pop()
    return sentences
