"""A scripted expert that writes a response following every instruction of a composed task.

It builds the response constructively, in a fixed order that keeps the transformations
compatible: a layout of paragraphs and segments (sections), filler sentences from the
topic's language pool, then inserted content (keywords, placeholders, highlights, capital
words, the fixed answer sentence, a letter sentence), then structure (repeated request,
title, bullets, postscript, end phrase), then the second response, then case, and last the
wrapping (quotation marks or JSON). Word and sentence bounds are met by searching the
sentence length and the number of filler sentences per segment.

The expert is not trusted blindly: a task is accepted only when this response passes every
strict check (``tasks.py``), so on every accepted task the expert is correct.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.instruction import constraints as c
from longhorizon.domains.instruction.needs import Needs, read_needs
from longhorizon.domains.instruction.pools import (
    CAPS_WORDS,
    KEYWORD_LIST_SENTENCE,
    KEYWORD_SENTENCES,
    LETTER_SENTENCE,
    LETTER_WORDS,
    POOLS,
)
from longhorizon.domains.instruction.reader import answer_message
from longhorizon.domains.instruction.text import (
    MODES,
    Infeasible,
    Mode,
    Writer,
    capitalise,
    decapitalise,
)
from longhorizon.domains.instruction.verify import ifeval_params, strict_passes
from longhorizon.verifiers.ifeval.combination import RESPONSE_SEPARATOR
from longhorizon.verifiers.ifeval.detectable_format import CONSTRAINED_OPTIONS
from longhorizon.verifiers.ifeval.nlp import count_words, split_sentences

MAX_FILLER = 60  # filler sentences per segment, at most
MAX_WORDS = 1200  # longer responses would not fit the response budget
DIVIDER = "\n\n***\n\n"
EXPERT_DRAFTS = 3  # drafts the expert writes before giving up on a task


@dataclass
class _Response:
    """Per-response content that does not depend on the length search."""

    extras: list[str]
    title: str | None
    bullets: list[str]
    postscript: str | None
    streams: dict[tuple[int, str], list[str]] = field(default_factory=dict)


class ResponseWriter:
    """Writes one response for a given set of needs, deterministically from a seed."""

    def __init__(self, needs: Needs, topic: str, seed: int) -> None:
        self.needs = needs
        self.seed = seed
        self.writer = Writer(POOLS[needs.language], topic, needs.text_filter)
        rng = random.Random(f"layout|{seed}")
        self.paragraphs = self._paragraph_count(rng)
        self.segments = self._segments_per_paragraph()
        self.default_filler = rng.randint(1, 3)
        self.option = rng.choice(CONSTRAINED_OPTIONS)
        count = 2 if needs.two_responses else 1
        self.responses = [self._response(r) for r in range(count)]

    # ---- layout ----------------------------------------------------------------------------
    def _paragraph_count(self, rng: random.Random) -> int:
        if self.needs.paragraphs is not None:
            return self.needs.paragraphs
        if self.needs.sections is not None:
            return self.needs.sections[1]
        # Upper bounds on length leave room for a single paragraph only.
        return 1 if self.needs.has_upper_bound else rng.randint(2, 4)

    def _segments_per_paragraph(self) -> list[int]:
        sections = self.needs.sections[1] if self.needs.sections else 0
        if sections <= self.paragraphs:
            return [1] * self.paragraphs
        base, extra = divmod(sections, self.paragraphs)
        return [base + (1 if j < extra else 0) for j in range(self.paragraphs)]

    # ---- fixed content ---------------------------------------------------------------------
    def _response(self, index: int) -> _Response:
        rng = random.Random(f"content|{self.seed}|{index}")
        needs, writer = self.needs, self.writer
        final = index == (2 if needs.two_responses else 1) - 1
        marker = needs.postscript
        postscript = None
        if final and marker is not None:
            stop = "" if marker.endswith(".") else "."
            postscript = f"{marker}{stop} {writer.postscript(rng)}"
        return _Response(
            extras=self._extras(rng),
            title=writer.title(rng) if needs.title else None,
            bullets=[f"* {capitalise(p)}" for p in writer.phrases_n(rng, needs.bullets)],
            postscript=postscript,
        )

    def _checked(self, sentence: str, inserted: list[str]) -> str:
        """A template sentence that passes the filter once the inserted items are removed."""
        bare = sentence
        for item in inserted:
            bare = bare.replace(item, " ")
        if not self.writer.filter.allows(bare):
            raise Infeasible(f"the text filter rejects {sentence!r}")
        return sentence

    def _extras(self, rng: random.Random) -> list[str]:
        needs, writer, pool = self.needs, self.writer, self.writer.pool
        extras: list[str] = []
        if needs.keywords:
            items = writer.join(needs.keywords)
            extras.append(self._checked(KEYWORD_LIST_SENTENCE.format(items=items), needs.keywords))
        for keyword, count in needs.keyword_counts:
            order = rng.sample(KEYWORD_SENTENCES, len(KEYWORD_SENTENCES))
            for i in range(count):
                sentence = order[i % len(order)].format(k=keyword)
                extras.append(self._checked(sentence, [keyword]))
        if needs.placeholders:
            names = writer.placeholders or ["x"]
            items = writer.join([f"[{names[i % len(names)]}]" for i in range(needs.placeholders)])
            extras.append(self._checked(pool.placeholder_template.format(items=items), [items]))
        if needs.highlights:
            spans = [f"*{p}*" for p in writer.phrases_n(rng, needs.highlights)]
            items = writer.join(spans)
            extras.append(self._checked(pool.highlight_template.format(items=items), [items]))
        if needs.capital_words and needs.case != "upper":
            words = self._capital_words(needs.capital_words)
            extras.append(self._checked(pool.caps_template.format(items=words), [words]))
        if needs.constrained:
            extras.append(self.option)
        return extras

    def _capital_words(self, count: int) -> str:
        if self.needs.language == "en":
            candidates = list(CAPS_WORDS)
        else:
            candidates = [w for p in self.writer.phrases for w in p.split() if len(w) >= 4]
        words = [w.upper() for w in candidates if self.writer.filter.allows(w)]
        if not words:
            raise Infeasible("no capital word survives the text filter")
        return " ".join(words[i % len(words)] for i in range(count))

    def _letter_sentence(self) -> str:
        assert self.needs.letter is not None
        letter, count = self.needs.letter
        words = [w for w in LETTER_WORDS[letter] if self.writer.filter.allows(w)]
        if not words:
            raise Infeasible(f"no word with {letter!r} survives the text filter")
        chosen: list[str] = []
        while sum(w.count(letter) for w in chosen) < count:
            chosen.append(words[len(chosen) % len(words)])
        return self._checked(LETTER_SENTENCE.format(items=" and ".join(chosen)), chosen)

    # ---- filler ----------------------------------------------------------------------------
    def _filler(self, response: int, segment: int, mode: Mode, count: int) -> list[str]:
        """The first `count` sentences of a fixed stream, so longer drafts extend shorter ones."""
        stream = self.responses[response].streams.setdefault((segment, mode), [])
        while len(stream) < count:
            # One seed per sentence: the stream does not depend on how it was extended.
            rng = random.Random(f"filler|{self.seed}|{response}|{segment}|{mode}|{len(stream)}")
            stream.append(self.writer.sentence(rng, mode))
        return stream[:count]

    # ---- assembly --------------------------------------------------------------------------
    def _segment_lines(
        self, response: int, segment: int, mode: Mode, filler: int, extras: list[str]
    ) -> list[str]:
        sentences = self._filler(response, segment, mode, 1 + filler)
        sentences = sentences[:1] + extras + sentences[1:]
        lines = [" ".join(sentences)]
        if self.needs.sections and segment < self.needs.sections[1]:
            lines.insert(0, f"{self.needs.sections[0]} {segment + 1}")
        return lines

    def _paragraphs(self, response: int, mode: Mode, filler: int, letter: bool) -> list[list[str]]:
        content = self.responses[response]
        extras = list(content.extras) + ([self._letter_sentence()] if letter else [])
        total = sum(self.segments)
        shares: list[list[str]] = [[] for _ in range(total)]
        for i, extra in enumerate(extras):
            shares[i % total].append(extra)
        paragraphs: list[list[str]] = []
        segment = 0
        for count in self.segments:
            lines: list[str] = []
            for _ in range(count):
                lines += self._segment_lines(response, segment, mode, filler, shares[segment])
                segment += 1
            paragraphs.append(lines)
        return self._decorate(response, paragraphs)

    def _decorate(self, response: int, paragraphs: list[list[str]]) -> list[list[str]]:
        """First word, bullets, title, repeated request, postscript and end phrase."""
        needs, content = self.needs, self.responses[response]
        if needs.nth is not None:
            index, word = needs.nth[0] - 1, needs.nth[1]
            paragraphs[index][0] = f"{capitalise(word)} {decapitalise(paragraphs[index][0])}"
        paragraphs[len(paragraphs) // 2].extend(content.bullets)
        if content.title is not None:
            title = f"<<{content.title}>>"
            # A title opening paragraph 1 would become its first word.
            if needs.nth is not None and needs.nth[0] == 1:
                paragraphs[0].append(title)
            else:
                paragraphs[0].insert(0, title)
        if response == 0 and needs.repeat is not None:
            paragraphs[0].insert(0, needs.repeat)
        last = paragraphs[-1]
        if content.postscript is not None:
            last.append(content.postscript)
        final = response == len(self.responses) - 1
        if final and needs.end_phrase is not None:
            if last[-1].startswith("* "):
                last.append(needs.end_phrase)
            else:
                last[-1] = f"{last[-1]} {needs.end_phrase}"
        return paragraphs

    def render(self, mode: Mode, filler: int, letter: bool = False) -> str:
        needs = self.needs
        line_sep = " " if needs.json else "\n"
        para_sep = " " if needs.json else (DIVIDER if needs.divider else "\n\n")
        bodies = [
            para_sep.join(line_sep.join(p) for p in self._paragraphs(r, mode, filler, letter))
            for r in range(len(self.responses))
        ]
        text = f"\n\n{RESPONSE_SEPARATOR}\n\n".join(bodies)
        if needs.case == "upper":
            text = text.upper()
        elif needs.case == "lower":
            text = text.lower()
        if needs.json:
            key = "RESPONSE" if needs.case == "upper" else "response"
            return json.dumps({key: text}, ensure_ascii=False)
        return f'"{text}"' if needs.quotation else text

    # ---- counts ----------------------------------------------------------------------------
    def draft(self, mode: Mode, filler: int) -> str:
        """A full draft; the letter sentence is added only when the letter is short."""
        text = self.render(mode, filler)
        if self.needs.letter is not None:
            letter, count = self.needs.letter
            if text.lower().count(letter) < count:
                text = self.render(mode, filler, letter=True)
        return text

    def _bounds(self, text: str) -> tuple[bool, bool]:
        """(every minimum reached, some maximum exceeded) for words and sentences."""
        counts: list[tuple[int, list[tuple[str, int]]]] = []
        if self.needs.words:
            counts.append((count_words(text), self.needs.words))
        if self.needs.sentences:
            counts.append((len(split_sentences(text)), self.needs.sentences))
        reached, exceeded = True, False
        for value, bounds in counts:
            for relation, threshold in bounds:
                if relation == c.AT_LEAST and value < threshold:
                    reached = False
                if relation == c.LESS_THAN and value >= threshold:
                    exceeded = True
        return reached, exceeded

    def _smallest_reaching(self, mode: Mode) -> int | None:
        """The fewest filler sentences that reach every minimum (counts grow with it)."""
        low, high = 0, MAX_FILLER
        if not self._bounds(self.draft(mode, high))[0]:
            return None
        while low < high:
            middle = (low + high) // 2
            if self._bounds(self.draft(mode, middle))[0]:
                high = middle
            else:
                low = middle + 1
        return low

    def write(self) -> str:
        if not self.needs.has_length_bound:
            return self.draft("medium", self.default_filler)
        for mode in MODES:
            filler = self._smallest_reaching(mode)
            if filler is None:
                continue
            text = self.draft(mode, filler)
            if not self._bounds(text)[1] and count_words(text) <= MAX_WORDS:
                return text
        raise Infeasible("no sentence length and count meets the word and sentence bounds")


def write_response(ids: list[str], kwargs: list[dict], topic: str, seed: int) -> str:
    """One draft for a composed prompt; raises Infeasible when it cannot be written."""
    return ResponseWriter(read_needs(ids, kwargs), topic, seed).write()


def expert_response(task: Task) -> str:
    """The first of a few seeded drafts that passes every strict check.

    Like a careful writer, the expert rereads its draft: a draft can fail a check the
    construction does not control (langdetect misreading capitalised English, say), and
    then the next draft is written. Raises Infeasible when no draft passes.
    """
    ids, kwargs = ifeval_params(task)
    topic, seed = task.metadata["topic"], int(task.metadata["expert_seed"])
    reason = "no draft"
    for attempt in range(EXPERT_DRAFTS):
        try:
            response = write_response(ids, kwargs, topic, seed * EXPERT_DRAFTS + attempt)
        except Infeasible as error:
            reason = str(error)
            continue
        if strict_passes(task, response):
            return response
        reason = "a draft failed a strict check"
    raise Infeasible(reason)


def expert_script(task: Task) -> Callable[[list[Message]], str]:
    """A ScriptedAgent script for any task of this domain (instruction or long-context)."""
    if task.metadata.get("variant") == "longcontext":
        return lambda messages: answer_message(_report_prompt(messages))
    response = expert_response(task)
    return lambda messages: response


def _report_prompt(messages: list[Message]) -> str:
    """The latest user message that carries the report (a forced-answer prompt does not)."""
    for message in reversed(messages):
        if message.role == "user" and message.content and "<document>" in message.content:
            return message.content
    return ""
