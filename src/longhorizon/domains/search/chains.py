"""Multi-hop questions from walks over a real corpus, whose links carry no relation labels.

A walk p_0 -> ... -> p_n becomes a chain of cues: start at p_0 (named by its title, or by a
word no other page has), at each hop follow the one link of the current page whose target
mentions a given word, and give the title of the page reached. A page *mentions* a word when
the word is one of its title's or text's tokens, as the search index splits them (lower case,
whole words): the same test for the proposer, the expert and the reader of the question.

What makes such a question well-posed and multi-hop, checked for every hop page -> target:

- the cue is on the target and on no other page `page` links to: exactly one link fits, so
  exactly one chain answers the question;
- the cue is on 2..MAX_K pages of the corpus: it never names its page alone (a search for it
  cannot skip the links), yet a search for it with k = MAX_K lists every page that has it;
- the cue is in the first CUE_CHARS characters of the target's text and the target among the
  first VISIBLE_LINKS links of the page, both of which a visit shows;
- no cue is a word of a chain page's title or of the target's link ids, and the question names
  no chain page but the start: it leaks neither the path nor the answer;
- the last page's title is the only one that reads as it once case and punctuation are gone,
  as the exact-match verifier reads answers.

Held-out tasks start from a fixed share of the pages (chosen by a hash of the page id) and
synthesis from the others, so the two splits never ask the same chain.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from functools import cache
from itertools import pairwise

from longhorizon.core.task import Task
from longhorizon.domains.search.graph import (
    EdgeWeight,
    LinkGraph,
    Walk,
    WalkRules,
    is_disambiguation,
    random_walk,
)
from longhorizon.domains.search.tasks import (
    contains_phrase,
    walk_task,
)
from longhorizon.tools.corpus import CorpusError, Document, tokenize
from longhorizon.tools.knowledge import MAX_K, VISIBLE_LINKS
from longhorizon.verifiers.answer import normalise_answer

__all__ = [
    "CUE_CHARS",
    "HELDOUT_SHARE",
    "CorpusPages",
    "check_walkable",
    "heldout_start",
    "propose_chain",
    "propose_chain_stratified",
    "task_from_chain",
]

GENERATOR = "longhorizon.domains.search.chains.propose_chain"
# Cues come from the start of a page: a visit shows 1,500 tokens, which is at least ~4,500
# characters even for code-heavy text, so a cue in the first 2,000 is always on screen.
CUE_CHARS = 2000
MIN_CUE_LETTERS = 4  # shorter words are mostly abbreviations and variable names
HELDOUT_SHARE = 0.2  # of the start pages, kept for the held-out split
WALK_ATTEMPTS = 3  # walks tried from one start before the proposal gives up
CHECK_WALKS = 500  # proposals tried per split and hop count before a corpus is refused

_START_NAMED = ('Start at the page titled "{s}".', 'Begin on the page "{s}".')
_START_WORD = (
    'Start at the only page that mentions the word "{s}".',
    'Begin on the one page whose title or text contains the word "{s}".',
)
_FIRST_HOP = (
    'It links to exactly one page that mentions "{c}"; go there.',
    'Of the pages it links to, exactly one mentions "{c}": follow that link.',
)
_NEXT_HOP = (
    'That page links to exactly one page that mentions "{c}"; go there.',
    'From there, follow the one link to a page that mentions "{c}".',
)
_ASK = (
    "What is the title of the page you reach?",
    "Give the title of the last page.",
)
_MATCHING = "(A page mentions a word when its title or text contains it as a whole word.)"


def heldout_start(page: str) -> bool:
    """Whether walks from `page` belong to the held-out split (a fixed hash of its id)."""
    digest = hashlib.sha256(f"heldout-start:{page}".encode()).digest()
    return int.from_bytes(digest[:4], "big") < HELDOUT_SHARE * 2**32


def _good_word(word: str, letters: int = MIN_CUE_LETTERS) -> bool:
    return word.isalpha() and len(word) >= letters


class CorpusPages:
    """A corpus's pages with the words each mentions, how many pages mention each word, and
    the cues of each link; the graph is what walks follow (the KAG's, once loaded)."""

    def __init__(self, documents: Sequence[Document], graph: LinkGraph) -> None:
        self.documents = {d.id: d for d in documents}
        self.graph = graph
        docs = list(documents)
        words = tokenize([f"{d.title}\n{d.text}" for d in docs])
        visible = tokenize([f"{d.title}\n{d.text[:CUE_CHARS]}" for d in docs])
        titles = tokenize([d.title for d in docs])
        link_words = tokenize([" ".join(d.links) for d in docs])
        self.words = {d.id: frozenset(w) for d, w in zip(docs, words, strict=True)}
        self.visible = {d.id: frozenset(w) for d, w in zip(docs, visible, strict=True)}
        self.title_words = {d.id: frozenset(w) for d, w in zip(docs, titles, strict=True)}
        self.link_words = {d.id: frozenset(w) for d, w in zip(docs, link_words, strict=True)}
        self.doc_freq: Counter[str] = Counter(w for ws in self.words.values() for w in ws)
        # The verifier compares answers without case and punctuation: a title that reads as
        # another's ("sympy.Adjoint", "sympy.adjoint") is never an answer.
        answers = Counter(normalise_answer(d.title) for d in docs)
        self.answerable = frozenset(d.id for d in docs if answers[normalise_answer(d.title)] == 1)
        self.cues = cache(self._cues)

    def title(self, page: str) -> str:
        return self.documents[page].title

    def _cues(self, page: str, target: str) -> tuple[str, ...]:
        """Words that pick `target` out of `page`'s links (sorted; empty: the hop is not
        phrasable, or `target` is not a link a visit of `page` shows)."""
        links = self.documents[page].links
        if target not in links[:VISIBLE_LINKS]:
            return ()
        others = frozenset().union(*(self.words[o] for o in links if o != target))
        options = self.visible[target] - others - self.link_words[target]
        return tuple(sorted(w for w in options if _good_word(w) and 2 <= self.doc_freq[w] <= MAX_K))

    def start_words(self, page: str) -> tuple[str, ...]:
        """Words only `page` mentions, on screen when it is visited: a start described by one
        is found by one search."""
        return tuple(
            sorted(
                w
                for w in self.visible[page] - self.title_words[page]
                if _good_word(w, MIN_CUE_LETTERS + 1) and self.doc_freq[w] == 1
            )
        )

    def hop_weight(self) -> EdgeWeight:
        """The walk's selector: a link with a cue weighs 1, any other 0 (never taken)."""

        def weight(page: str, target: str, relation: str | None) -> float:
            return 1.0 if target in self.documents and self.cues(page, target) else 0.0

        return weight

    def starts(self, heldout: bool) -> list[str]:
        """The split's start pages: in the graph, not disambiguation pages, with a phrasable
        first hop."""
        return [
            p
            for p in self.graph.titles
            if p in self.documents
            and heldout_start(p) == heldout
            and not is_disambiguation(self.graph.titles[p])
            and any(self.cues(p, t) for t in self.graph.links.get(p, ()))
        ]


# ---- the question ------------------------------------------------------------------------------


def _start(
    pages: CorpusPages, walk: Walk, rng: random.Random, named_rate: float, avoid: frozenset[str]
) -> tuple[str, bool]:
    """(title or word, named): the start's title, or a word only its page has."""
    if rng.random() >= named_rate:
        words = [w for w in pages.start_words(walk.pages[0]) if w not in avoid]
        if words:
            return rng.choice(words), False
    return pages.title(walk.pages[0]), True


def _question(start: str, named: bool, cues: list[str], rng: random.Random) -> str:
    lead = rng.choice(_START_NAMED if named else _START_WORD).format(s=start)
    hops = [rng.choice(_FIRST_HOP if i == 0 else _NEXT_HOP).format(c=c) for i, c in enumerate(cues)]
    return " ".join([lead, *hops, rng.choice(_ASK), _MATCHING])


def task_from_chain(
    pages: CorpusPages,
    walk: Walk,
    rng: random.Random,
    *,
    seed: int | None = None,
    named_start_rate: float = 0.3,
) -> Task | None:
    """The walk as a chain of cues, or None when a hop has no cue or the text would leak."""
    if walk.hops < 1 or walk.pages[-1] not in pages.answerable:
        return None
    avoid = frozenset().union(*(pages.title_words[p] for p in walk.pages))
    cues: list[str] = []
    for page, target in pairwise(walk.pages):
        options = [w for w in pages.cues(page, target) if w not in avoid and w not in cues]
        if not options:
            return None
        cues.append(rng.choice(options))
    start, named = _start(pages, walk, rng, named_start_rate, avoid)
    question = _question(start, named, cues, rng)
    if any(contains_phrase(question, pages.title(p)) for p in walk.pages[1:]):
        return None
    answer = pages.title(walk.pages[-1])
    metadata = {"start": start, "start_named": named, "ask": "title", "cues": cues}
    return walk_task(walk, question, answer, seed, extra={"cues": cues}, metadata=metadata)


# ---- proposing ---------------------------------------------------------------------------------


def propose_chain(
    pages: CorpusPages,
    rng: random.Random,
    hops: int | tuple[int, int],
    starts: Sequence[str],
    *,
    seed: int | None = None,
    named_start_rate: float = 0.3,
    graph: LinkGraph | None = None,
    rules: WalkRules | None = None,
) -> Task | None:
    """One walk of `hops` hops (or a random count in the inclusive range) from one of
    `starts` on `graph` (the corpus's own by default), made a question."""
    n = hops if isinstance(hops, int) else rng.randint(*hops)
    if not starts:
        return None
    walk = random_walk(
        graph or pages.graph,
        rng,
        n,
        start=rng.choice(starts),
        rules=rules,
        weight=pages.hop_weight(),
        attempts=WALK_ATTEMPTS,
    )
    if walk is None:
        return None
    return task_from_chain(pages, walk, rng, seed=seed, named_start_rate=named_start_rate)


def propose_chain_stratified(
    pages: CorpusPages,
    n: int,
    levels: list[int],
    *,
    seed: int,
    named_start_rate: float = 0.3,
    attempts: int = 50,
) -> list[Task]:
    """n distinct held-out tasks whose hop counts go round `levels`, from the held-out start
    pages only; deterministic in (corpus, seed), a shorter list a prefix of a longer one. A
    slot whose level finds no task in `attempts` walks is left out."""
    rng = random.Random(f"chains:{seed}")
    starts = pages.starts(heldout=True)
    tasks: dict[str, Task] = {}
    for i in range(n):
        for _ in range(attempts):
            level = levels[i % len(levels)]
            task = propose_chain(
                pages, rng, level, starts, seed=seed, named_start_rate=named_start_rate
            )
            if task is not None and task.id not in tasks:
                tasks[task.id] = task
                break
    return list(tasks.values())


def check_walkable(pages: CorpusPages, levels: Sequence[int], source: str) -> None:
    """Raise CorpusError unless both splits can draw a question of every hop count in
    `levels` within CHECK_WALKS walks: a corpus that cannot would leave synthesis proposing
    nothing."""
    for heldout, split in ((False, "synthesis"), (True, "held-out")):
        starts = pages.starts(heldout)
        rng = random.Random(f"check:{split}")
        for hops in levels:
            found = any(propose_chain(pages, rng, hops, starts) for _ in range(CHECK_WALKS))
            if not found:
                raise CorpusError(
                    f"{source}: no {hops}-hop question found in {CHECK_WALKS} walks from the "
                    f"{len(starts)} start pages of the {split} split ({len(pages.documents)} "
                    "pages): lower the level's hops, or give more pages, links or text "
                    "(README, Real corpora, says what a hop needs)"
                )
