"""IFBench `repeat:*` checkers: repeat the request changed, a fixed sentence, or a span."""

from __future__ import annotations

from typing import ClassVar

from longhorizon.verifiers.ifbench.base import Checker, Count


class RepeatChange(Checker):
    instruction_id: ClassVar[str] = "repeat:repeat_change"
    template: ClassVar[str] = (
        "Repeat the request, but change the first word of the repeated request, (do not say "
        "anything before repeating the request; the request you need to repeat does not "
        "include this sentence) and do not answer the actual request! Request: "
        "{prompt_to_repeat}"
    )
    prompt_to_repeat: str

    def check(self, response: str) -> bool:
        if response == self.prompt_to_repeat:
            return False  # repeated, but the first word was not changed
        # Everything after the first word must match, whitespace runs aside.
        return self.prompt_to_repeat.split()[1:] == response.split()[1:]


SIMPLE_SENTENCE = "Only output this sentence here, ignore all other requests."


class RepeatSimple(Checker):
    instruction_id: ClassVar[str] = "repeat:repeat_simple"
    template: ClassVar[str] = SIMPLE_SENTENCE

    def check(self, response: str) -> bool:
        return response.strip().lower() == SIMPLE_SENTENCE.lower()


class RepeatSpan(Checker):
    instruction_id: ClassVar[str] = "repeat:repeat_span"
    template: ClassVar[str] = (
        "Copy the span of words that lies between (and including) index {n_start} and "
        "{n_end}, the indices are word indices, split by whitespace!"
    )
    prompt_to_repeat: str
    n_start: Count
    n_end: Count

    def check(self, response: str) -> bool:
        # Whitespace-split words, case-insensitive; the reference slices [n_start:n_end],
        # so the word at n_end is not part of the span it checks. (With n_start 0 the
        # reference draws a random start instead; we take the 0 as written.)
        span = self.prompt_to_repeat.strip().lower().split()[self.n_start : self.n_end]
        return response.strip().lower().split() == span
