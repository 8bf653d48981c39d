"""IFBench `format:*` checkers about marks in the text: brackets, quotes, emoji, italics, case."""

from __future__ import annotations

import functools
import string
from typing import Any, ClassVar

from longhorizon.verifiers.ifbench.base import Checker, drop_punctuation
from longhorizon.verifiers.ifbench.sentences import split_into_sentences
from longhorizon.verifiers.ifeval.nlp import IFEvalDependencyError, word_tokenize

_CLOSES = {")": "(", "]": "[", "}": "{"}


class Parentheses(Checker):
    instruction_id: ClassVar[str] = "format:parentheses"
    template: ClassVar[str] = (
        "Nest parentheses (and [brackets {{and braces}}]) at least 5 levels deep."
    )

    def check(self, response: str) -> bool:
        # Passes at the first matching close once 5 brackets were open at the same time;
        # a mismatched close forgets everything opened so far.
        open_, deepest = [], 0
        for char in response:
            if char in "([{":
                open_.append(char)
                deepest = max(deepest, len(open_))
            elif char in _CLOSES:
                if not open_ or open_[-1] != _CLOSES[char]:
                    open_, deepest = [], 0
                    continue
                open_.pop()
                if deepest >= 5:
                    return True
        return False


class Quotes(Checker):
    instruction_id: ClassVar[str] = "format:quotes"
    template: ClassVar[str] = (
        "Include quotes within quotes within quotes, at least 3 levels deep, alternating "
        "between double quotes and single quotes."
    )

    def check(self, response: str) -> bool:
        # A quote closes when it equals the innermost open one, else it opens a level.
        # Passes when a close leaves the text 3 levels below the deepest point reached.
        open_: list[str] = []
        deepest = 0
        for char in response:
            if open_ and char == open_[-1]:
                open_.pop()
                if deepest - len(open_) >= 3:
                    return True
            elif char in "\"'":
                open_.append(char)
                deepest = max(deepest, len(open_))
        return False


@functools.cache
def _is_emoji() -> Any:
    try:
        import emoji
    except ImportError as error:
        raise IFEvalDependencyError(
            f"IFBench's format:emoji needs the PyPI package 'emoji' (`pip install emoji`): {error}"
        ) from error
    return emoji.is_emoji


class Emoji(Checker):
    instruction_id: ClassVar[str] = "format:emoji"
    template: ClassVar[str] = "Please use an emoji at the end of every sentence."

    def check(self, response: str) -> bool:
        is_emoji = _is_emoji()
        sentences = [drop_punctuation(s).strip() for s in split_into_sentences(response)]
        for i, text in enumerate(sentences):
            if not text:
                return False
            if is_emoji(text[-1]) or is_emoji(text[-2:][0]):
                continue  # an emoji last, or just before a variation selector or the like
            # The splitter cuts after "!" or ".", so an emoji after them opens the next piece.
            following = sentences[i + 1] if i + 1 < len(sentences) else ""
            if not following or not is_emoji(following[0]):
                return False
        return True


class QuoteUnquote(Checker):
    instruction_id: ClassVar[str] = "format:quote_unquote"
    template: ClassVar[str] = "Every quoted phrase must be followed by an unquoted explanation."

    def check(self, response: str) -> bool:
        text = response.replace("“", '"').replace("”", '"').replace("'\"'", "")
        text = "".join(text.split())
        if '""' in text:
            return False  # two quoted phrases with nothing between them
        tail = text.strip(string.digits + string.punctuation.replace('"', ""))
        return bool(tail) and tail[-1] != '"'


class Thesis(Checker):
    instruction_id: ClassVar[str] = "format:thesis"
    template: ClassVar[str] = (
        "Each section must begin with a thesis statement in italics, use HTML to indicate "
        "the italics."
    )

    def check(self, response: str) -> bool:
        start = response.find("<i>")
        if start == -1:
            start = response.find("<em>")
        if start == -1:
            return False
        text = response[start:]
        end = text.find("</i>")
        if end == -1:
            end = text.find("</em>")
        if end == -1:
            return False
        # Offsets as the reference takes them (3 and 4, the lengths of "<i>" and "</i>").
        return bool(text[3:end].strip()) and bool(text[end + 4 :].strip())


class TitleCase(Checker):
    instruction_id: ClassVar[str] = "format:title_case"
    template: ClassVar[str] = (
        "Write the entire response in title case (capitalize the first letter of every major word)."
    )

    def check(self, response: str) -> bool:
        # Fails only on a token that starts lowercase and whose rest is all one case.
        for token in word_tokenize(response):
            head, rest = token[0], token[1:]
            if head.islower() and (rest.isupper() or rest.islower()):
                return False
        return True


class NoWhitespace(Checker):
    instruction_id: ClassVar[str] = "format:no_whitespace"
    template: ClassVar[str] = "The output should not contain any whitespace."

    def check(self, response: str) -> bool:
        return not any(char.isspace() for char in response)
