"""A scripted expert for search tasks: it solves a task with the tools a model would use.

`expert_script(task, encyclopedia)` is a `ScriptedAgent` script. It searches for the start,
visits its page, reads the next entity's name off that page, searches for it, visits it, and
so on; then it reads the asked value off the last page and answers. The encyclopedia's
structured data only tells it what to look for next: a fact is used only after it was seen in
an observation (a name in the page text, a document id in search results, the answer value on
the final page), so every evidence page is visited before it answers.

With `error_rate > 0` some episodes go wrong the way agents do: following the wrong link from
a page, or answering before reading the last page (a guess). Those trajectories fail the
answer or the evidence-path verifier and feed the post-filter with realistic negatives.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Generator
from typing import Any

from longhorizon.core.messages import Message, last_observations
from longhorizon.core.task import Task
from longhorizon.domains.search.encyclopedia import Encyclopedia
from longhorizon.domains.search.schema import format_value, hop_kind, hop_phrase
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER

_HIT = re.compile(r"^\s*\d+\. \[(?P<id>[^\]]+)\] (?P<title>.+?) \(score [-\d.e]+\)\s*$", re.M)
_HEADER = re.compile(r"^Document \[(?P<id>[^\]]+)\]: (?P<title>.+)$", re.M)
_NUMBER = re.compile(r"\d[\d,]*\d|\d")
MISTAKES = ("wrong_hop", "early_answer")

Turns = Generator[str, str, None]  # yields assistant texts, receives observations
Finds = Generator[str, str, "str | None"]  # the same, returning a page observation or None


def tool_call(name: str, **arguments: Any) -> str:
    """A Hermes tool-call block."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def mentions(text: str, phrase: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", text) is not None


def search_hits(observation: str) -> list[tuple[str, str]]:
    """(id, title) of every search result, best first."""
    return [(m.group("id"), m.group("title").strip()) for m in _HIT.finditer(observation)]


def find_hit(observation: str, title: str) -> str | None:
    """The id of the search result whose title is exactly `title`."""
    return next((doc_id for doc_id, hit in search_hits(observation) if hit == title), None)


def page_title(observation: str) -> str | None:
    match = _HEADER.search(observation)
    return match.group("title").strip() if match else None


def page_id(observation: str) -> str | None:
    match = _HEADER.search(observation)
    return match.group("id") if match else None


class ScriptedSolver:
    """The script protocol of a scripted expert: a generator of turns (`_solve`, written by
    each expert) fed with the observations of each turn; after a context compaction it
    writes the digest of what it found, and when told to answer it answers its best guess.

    With probability `error_rate` one mistake is drawn for the episode: a `MISTAKES` kind
    and the hop (0..hops-1) where it happens.
    """

    def __init__(self, task: Task, hops: int, *, error_rate: float, seed: int) -> None:
        self.task = task
        rng = random.Random(f"expert:{seed}:{task.id}")
        self.mistake: tuple[str, int] | None = None
        if rng.random() < error_rate:
            self.mistake = (rng.choice(MISTAKES), rng.randrange(hops))
        self.rng = rng
        self.facts: list[str] = []
        self.guess: str | None = None
        self._turns: Turns | None = None
        self._last = ""

    # ---- the script protocol --------------------------------------------------------------
    def __call__(self, messages: list[Message]) -> str:
        last = messages[-1]
        if last.role == "user" and last.content != self.task.instruction:
            if last.content == COMPACT_PROMPT:
                return self._digest()
            if DIGEST_HEADER in (last.content or ""):
                return self._last  # the pending observation was compacted away: ask again
            return self._answer(self.guess or "unknown", "I have to answer now.")
        self._last = self._advance(messages)
        return self._last

    def _advance(self, messages: list[Message]) -> str:
        """The next turn of the plan, fed with the latest observations."""
        if self._turns is None or messages[-1].role == "user":  # a fresh or restarted episode
            self._turns = self._solve()
            return next(self._turns)
        observation = last_observations(messages)
        try:
            return self._turns.send(observation)
        except StopIteration:
            return self._answer(self.guess or "unknown", "I have no further steps.")

    def _solve(self) -> Turns:
        raise NotImplementedError

    def _early(self, hop: int) -> bool:
        return self.mistake == ("early_answer", hop)

    # ---- texts ----------------------------------------------------------------------------
    @staticmethod
    def _say(thought: str, call: str) -> str:
        return f"{thought}\n{call}"

    def _answer(self, answer: str, reason: str) -> str:
        return f"{reason}\n<answer>{answer}</answer>"

    def _give_up(self, reason: str) -> str:
        return self._answer(self.guess or "unknown", f"{reason} My best guess follows.")

    def _digest(self) -> str:
        found = "\n".join(f"- {f}" for f in self.facts) or "- nothing yet"
        return f"Task: {self.task.instruction}\nFound so far:\n{found}"


class SearchExpert(ScriptedSolver):
    """The encyclopedia's expert: names read off pages, searched and visited hop by hop."""

    def __init__(
        self,
        task: Task,
        encyclopedia: Encyclopedia,
        *,
        error_rate: float = 0.0,
        seed: int = 0,
        search_k: int = 5,
    ) -> None:
        self.enc = encyclopedia
        self.chain: list[str] = list(task.provenance.extra.get("walk") or task.evidence)
        self.labels: list[str] = list(task.provenance.extra["relations"])
        self.search_k = search_k
        super().__init__(task, len(self.labels), error_rate=error_rate, seed=seed)

    # ---- turns ----------------------------------------------------------------------------
    def _solve(self) -> Turns:
        meta = self.task.metadata
        first = self.chain[0]
        start_query = self.enc.name(first) if meta.get("start_named") else str(meta["start"])
        page = yield from self._find(first, start_query, "the starting point of the question")
        if page is None or not self._description_holds(page, meta):
            yield self._give_up(f"I could not confirm {self.enc.name(first)} as the start.")
            return
        for hop, label in enumerate(self.labels):
            current, target = self.chain[hop], self.chain[hop + 1]
            target = self._maybe_wrong_hop(hop, current, target, page)
            name = self.enc.name(target)
            if not mentions(page, name):
                yield self._give_up(f"The page of {self.enc.name(current)} does not name it.")
                return
            fact = f"{hop_phrase(label, self.enc.name(current))} is {name}"
            self.facts.append(f"{fact} (read on [{current}])")
            self.guess = self._guess(target)
            if self._early(hop):  # a guess: answering before reading the remaining pages
                yield self._answer(self.guess, f"The page says {fact}.")
                return
            page = yield from self._find(target, name, f"{hop_kind(label)} {name}", note=fact)
            if page is None:
                yield self._give_up(f"I could not find the page of {name}.")
                return
            if target != self.chain[hop + 1]:  # a wrong link followed: it answers from there
                yield self._answer(self.guess, f"The page of {name} gives the answer.")
                return
        answer = self._read_answer(page)
        if answer is None:
            yield self._give_up("The last page does not state the value asked for.")
            return
        yield self._answer(answer, f"The page of {self.enc.name(self.chain[-1])} states it.")

    def _find(self, entity_id: str, query: str, what: str, note: str = "") -> Finds:
        """Search for an entity, pick its exact-title hit, visit it; the page or None."""
        name = self.enc.name(entity_id)
        lead = f"The page says {note}. " if note else ""
        observation = yield self._say(
            f"{lead}I need to find {what}. Let me search.",
            tool_call("search", query=query, k=self.search_k),
        )
        doc_id = find_hit(observation, name)
        if doc_id is None:
            fallback = f"{name} {self.enc.by_id[entity_id].kind}" if query == name else name
            observation = yield self._say(
                f"{name} is not among the results; searching more specifically.",
                tool_call("search", query=fallback, k=10),
            )
            doc_id = find_hit(observation, name)
        if doc_id is None:
            return None
        page = yield self._say(
            f"Result [{doc_id}] is {name}. Let me read it.",
            tool_call("visit", id=doc_id, goal=f"facts about {name}"),
        )
        return page if page_title(page) == name else None

    # ---- reading and mistakes -------------------------------------------------------------
    def _description_holds(self, page: str, meta: dict[str, Any]) -> bool:
        """Every number of a described start (years, sizes) must be on its page."""
        if meta.get("start_named"):
            return True
        return all(mentions(page, n) for n in _NUMBER.findall(str(meta["start"])))

    def _read_answer(self, page: str) -> str | None:
        ask = self.task.metadata["ask"]
        entity = self.enc.by_id[self.chain[-1]]
        if ask == "name":
            return page_title(page) if page_title(page) == entity.name else None
        value = format_value(ask, entity.attributes[ask])
        return value if mentions(page, value) else None

    def _guess(self, entity_id: str) -> str:
        """What a guesser would answer having reached `entity_id` (from what it has read)."""
        ask = self.task.metadata["ask"]
        entity = self.enc.by_id[entity_id]
        if ask == "name":
            return entity.name
        # An entity without the asked attribute: a guesser gives the number it has at hand.
        numbers = [(k, v) for k, v in entity.attributes.items() if isinstance(v, int)]
        key, value = (ask, entity.attributes[ask]) if ask in entity.attributes else numbers[0]
        return format_value(key, value)

    def _maybe_wrong_hop(self, hop: int, current: str, target: str, page: str) -> str:
        """Under a wrong_hop mistake, another entity named on the page instead of the target."""
        if self.mistake != ("wrong_hop", hop):
            return target
        others = [
            p
            for p in self.enc.graph().links.get(current, ())
            if p != target and p not in self.chain and mentions(page, self.enc.name(p))
        ]
        if not others:  # nothing else to follow: the mistake becomes a guess at this hop
            self.mistake = ("early_answer", hop)
            return target
        return self.rng.choice(others)


def expert_script(
    task: Task, encyclopedia: Encyclopedia, *, error_rate: float = 0.0, seed: int = 0
) -> SearchExpert:
    """The script for `ScriptedAgent(renderer, expert_script(task, encyclopedia))`."""
    return SearchExpert(task, encyclopedia, error_rate=error_rate, seed=seed)
