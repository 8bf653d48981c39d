"""The scripted expert for chain questions over a real corpus (`chains.py`): it solves them
with search and visit as a model would, using a fact only once an observation showed it.

It finds the start (a search for its title, or for the word only the start's page has, and
a visit), then at each hop searches for the hop's word with k = MAX_K (every page with the
word is listed, since the proposer keeps words on at most MAX_K pages), takes the one hit
among the links the current page's visit listed, visits it and checks the word is there; it
answers with the title of the last page it read. Its mistakes, at `error_rate`: following
another link of the page and answering from there, or answering with a hit's title before
reading the remaining pages (a guess).
"""

from __future__ import annotations

import re

from longhorizon.core.task import Task
from longhorizon.domains.search.expert import (
    Finds,
    ScriptedSolver,
    Turns,
    find_hit,
    page_id,
    page_title,
    search_hits,
    tool_call,
)
from longhorizon.tools.corpus import tokenize
from longhorizon.tools.knowledge import MAX_K

__all__ = ["ChainExpert", "page_links"]

START_K = 5  # results of the first search for the start; MAX_K when its title is not among them
_LINKS = re.compile(r"^Links: (?P<links>.*)$", re.M)


def page_links(observation: str) -> list[str]:
    """The ids a visit listed as the page's links."""
    match = _LINKS.search(observation)
    return match.group("links").split(", ") if match else []


def page_mentions(observation: str, word: str) -> bool:
    """Whether the page read mentions `word`, as the search index splits words."""
    return word in tokenize([observation])[0]


class ChainExpert(ScriptedSolver):
    """A chain question solved hop by hop: search the hop's word, keep the linked hit, visit."""

    def __init__(self, task: Task, *, error_rate: float = 0.0, seed: int = 0) -> None:
        self.chain: list[str] = list(task.provenance.extra.get("walk") or task.evidence)
        self.cues: list[str] = list(task.metadata["cues"])
        super().__init__(task, len(self.cues), error_rate=error_rate, seed=seed)

    def _solve(self) -> Turns:
        page = yield from self._find_start()
        if page is None:
            yield self._give_up("I could not find the page to start from.")
            return
        for hop, cue in enumerate(self.cues):
            here, links = page_title(page), page_links(page)
            observation = yield self._say(
                f'{here} links to {len(links)} pages, one of which mentions "{cue}". '
                "Let me search for the word.",
                tool_call("search", query=cue, k=MAX_K),
            )
            linked = [(i, t) for i, t in search_hits(observation) if i in links]
            if len(linked) != 1:
                yield self._give_up(f'Not exactly one page linked from {here} mentions "{cue}".')
                return
            doc_id, title = linked[0]
            self.guess = title
            wrong = self._wrong_link(hop, doc_id, links)
            if self._early(hop):  # a guess: answering before reading the remaining pages
                yield self._answer(title, f'{title} is linked from {here} and mentions "{cue}".')
                return
            page = yield self._say(
                f"Of the results, only [{doc_id}] {title} is linked from {here}. Let me read it.",
                tool_call("visit", id=wrong or doc_id),
            )
            if wrong is not None:  # another link followed: it answers from there
                yield self._answer(page_title(page) or title, "This page ends the chain.")
                return
            if page_id(page) != doc_id or not page_mentions(page, cue):
                yield self._give_up(f'The page of {title} does not mention "{cue}".')
                return
            self.facts.append(f'{here} links to [{doc_id}] {title}, which mentions "{cue}"')
        final = page_title(page) or "unknown"
        yield self._answer(final, f"{final} is the page the chain ends on.")

    def _find_start(self) -> Finds:
        """Search for the start (its title, or the word only its page has) and visit it."""
        start, named = str(self.task.metadata["start"]), bool(self.task.metadata["start_named"])
        what = f'the page "{start}"' if named else f'the one page that mentions "{start}"'
        observation = yield self._say(
            f"I need to find {what}. Let me search.",
            tool_call("search", query=start, k=START_K),
        )
        hits = search_hits(observation)
        doc_id = find_hit(observation, start) if named else (hits[0][0] if len(hits) == 1 else None)
        if named and doc_id is None:
            observation = yield self._say(
                f"{start} is not among the results; let me list more.",
                tool_call("search", query=start, k=MAX_K),
            )
            doc_id = find_hit(observation, start)
        if doc_id is None:
            return None
        page = yield self._say(
            f"Result [{doc_id}] is the start. Let me read it.", tool_call("visit", id=doc_id)
        )
        found = page_title(page) == start if named else page_mentions(page, start)
        return page if found and page_id(page) == doc_id else None

    def _wrong_link(self, hop: int, target: str, links: list[str]) -> str | None:
        """Under a wrong_hop mistake, another link of the page (None: follow the right one)."""
        if self.mistake != ("wrong_hop", hop):
            return None
        others = [link for link in links if link != target and link not in self.chain]
        if not others:  # nothing else to follow: the mistake becomes a guess at this hop
            self.mistake = ("early_answer", hop)
            return None
        return self.rng.choice(others)
