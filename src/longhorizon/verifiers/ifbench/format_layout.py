"""IFBench `format:*` checkers about layout: options, lines, indents, lists, a template."""

from __future__ import annotations

import itertools
import re
from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker, drop_punctuation, strip_punctuation
from longhorizon.verifiers.ifbench.sentences import split_into_sentences


class Options(Checker):
    instruction_id: ClassVar[str] = "format:options"
    template: ClassVar[str] = (
        "Answer with one of the following options: {options}. Do not give any explanation."
    )
    options: str

    def choices(self) -> list[str]:
        # Separated by "/" if any, else by "or" (as a substring), else by ",".
        separator = "/" if "/" in self.options else "or" if "or" in self.options else ","
        return [choice.strip() for choice in self.options.split(separator)]

    def check(self, response: str) -> bool:
        if re.match(r"\W*[aA]\W*[bB]\W*[cC]\W*", self.options):
            # Lettered options ("a), b), c), d)") must be answered exactly as written.
            return response in self.choices()
        answer = strip_punctuation(response).lower()
        return any(strip_punctuation(choice).lower() == answer for choice in self.choices())


class Newline(Checker):
    instruction_id: ClassVar[str] = "format:newline"
    template: ClassVar[str] = "Write each word on a new line."

    def check(self, response: str) -> bool:
        text = drop_punctuation(response).strip()
        # Empty lines do not count; a line of spaces does (and holds no word).
        lines = [line for line in text.split("\n") if line]
        return len(lines) == len(text.split())


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _drop_blank_lines_as_reference(lines: list[str]) -> list[str]:
    """Blank lines removed the way the reference does it: by `list.remove` while iterating
    over the same list, so a blank line right after a removed one survives, and each
    removal takes the first equal line."""
    lines = list(lines)
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            lines.remove(line)
    return lines


class LineIndent(Checker):
    instruction_id: ClassVar[str] = "format:line_indent"
    template: ClassVar[str] = "Create stairs by incrementally indenting each new line."

    def check(self, response: str) -> bool:
        lines = _drop_blank_lines_as_reference(response.split("\n"))
        return all(_indent(a) < _indent(b) for a, b in itertools.pairwise(lines))


class List(Checker):
    instruction_id: ClassVar[str] = "format:list"
    template: ClassVar[str] = "Answer with a list of items, instead of bullet points use {sep}."
    sep: str

    def check(self, response: str) -> bool:
        # Anywhere in the text, not only at line starts; occurrences do not overlap.
        return len(re.findall(re.escape(self.sep), response)) >= 2


class SubBullets(Checker):
    instruction_id: ClassVar[str] = "format:sub-bullets"
    template: ClassVar[str] = (
        "Your response must include bullet points denoted by * and at least one sub-bullet "
        "point denoted by - for each bullet point."
    )

    def check(self, response: str) -> bool:
        # Every stretch of text after a "*" must hold a "-" (no "*" at all passes).
        return all("-" in piece for piece in response.split("*")[1:])


class NoBulletsBullets(Checker):
    instruction_id: ClassVar[str] = "format:no_bullets_bullets"
    template: ClassVar[str] = (
        "Your answer must contain at least two sentences ending in a period followed by at "
        "least two bullet points denoted by *."
    )

    def check(self, response: str) -> bool:
        sentences, bullets = 0, 0
        # Prose may go on only while the last prose line held a sentence: an empty line
        # ends it, as in the reference, where the flag becomes that line's sentence list.
        prose_open = True
        for line in response.split("\n"):
            if line.strip().startswith("*"):
                prose_open = False
                if sentences < 2:
                    return False
                bullets += 1
            elif prose_open:
                found = split_into_sentences(line.strip())
                sentences += len(found)
                prose_open = bool(found)
            else:
                return False
        return bullets >= 2


class OutputTemplate(Checker):
    instruction_id: ClassVar[str] = "format:output_template"
    template: ClassVar[str] = (
        "Use this exact template for your response: My Answer: [answer] My Conclusion: "
        "[conclusion] Future Outlook: [outlook]"
    )

    def check(self, response: str) -> bool:
        return all(part in response for part in ("My Answer:", "My Conclusion:", "Future Outlook:"))
