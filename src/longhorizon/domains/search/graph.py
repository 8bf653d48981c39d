"""The hyperlink graph and constrained random walks over it.

`LinkGraph` holds page titles, out-links (only to pages in the graph, each once, no self
links), in/out degrees and, when known, the relation each link expresses. It is built from
the built-in encyclopedia or from any wiki-style corpus (`load_wiki_corpus`), so task
generation runs unchanged on Wikipedia.

`random_walk` follows links while skipping visited pages, disambiguation pages, pages whose
title nearly duplicates one already on the path ("Varo" vs "Varo River": a question hopping
between them would be trivial or ill-posed) and, for intermediate hops, pages with few
out-links (dead ends and stubs make poor bridges). A weight function is the selector: it
prefers links whose relation can be phrased as a question hop.
"""

from __future__ import annotations

import random
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from longhorizon.domains.search.wiki import read_wiki_corpus
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.corpus import Document

if TYPE_CHECKING:
    from longhorizon.domains.search.encyclopedia import Encyclopedia

# Words that name a category rather than an entity: "Varo River" and "University of Varo"
# both reduce to "varo", which is what makes them near-duplicates of the city "Varo".
GENERIC_WORDS = frozenset((
    "the", "of", "and", "a", "an", "river", "university", "college", "institute", "technology",
    "city", "company", "group", "industries", "systems", "works", "labs", "holdings", "trading",
    "inc", "ltd",
))  # fmt: skip
_PUNCT = str.maketrans({c: " " for c in string.punctuation})
_PARENTHETICAL = re.compile(r"\([^)]*\)")

EdgeWeight = Callable[[str, str, str | None], float]  # (page, linked page, relation) -> w


# ---- titles ------------------------------------------------------------------------------------


def normalise_title(title: str) -> str:
    """Lower case, NFKC, no parenthetical qualifier, no punctuation, no generic words."""
    text = unicodedata.normalize("NFKC", title).lower()
    words = _PARENTHETICAL.sub(" ", text).translate(_PUNCT).split()
    core = [w for w in words if w not in GENERIC_WORDS]
    return " ".join(core or words)  # a title made only of generic words keeps them


def near_duplicate(a: str, b: str, threshold: float = 0.85) -> bool:
    """Same normalised title, one's words a subset of the other's, or similar spelling."""
    na, nb = normalise_title(a), normalise_title(b)
    if not na or not nb:
        return na == nb
    wa, wb = set(na.split()), set(nb.split())
    if wa <= wb or wb <= wa:
        return True
    return SequenceMatcher(None, na, nb).ratio() >= threshold


def is_disambiguation(title: str) -> bool:
    return "(disambiguation)" in title.lower()


# ---- the graph ---------------------------------------------------------------------------------


@dataclass
class LinkGraph:
    """Pages (id -> title), out-links, and optional relation labels of links."""

    titles: dict[str, str]
    links: dict[str, tuple[str, ...]]
    relations: dict[tuple[str, str], str] = field(default_factory=dict)
    in_degrees: Counter[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.in_degrees = Counter(t for targets in self.links.values() for t in targets)

    def __len__(self) -> int:
        return len(self.titles)

    def __contains__(self, page: object) -> bool:
        return page in self.titles

    def out_degree(self, page: str) -> int:
        return len(self.links.get(page, ()))

    def in_degree(self, page: str) -> int:
        return self.in_degrees.get(page, 0)

    def relation(self, page: str, target: str) -> str | None:
        return self.relations.get((page, target))

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Document],
        relations: Mapping[tuple[str, str], str] | None = None,
    ) -> LinkGraph:
        """Links may name a page by id or, as wiki dumps often do, by title."""
        docs = list(documents)
        titles = {d.id: d.title or d.id for d in docs}
        by_title = {d.title.lower(): d.id for d in docs if d.title}
        links: dict[str, tuple[str, ...]] = {}
        for doc in docs:
            resolved = (
                link if link in titles else by_title.get(link.lower()) for link in doc.links
            )
            targets = (t for t in resolved if t is not None and t != doc.id)
            links[doc.id] = tuple(dict.fromkeys(targets))
        return cls(titles, links, dict(relations or {}))

    @classmethod
    def from_encyclopedia(cls, encyclopedia: Encyclopedia) -> LinkGraph:
        return encyclopedia.graph()

    @classmethod
    def from_kag(cls, kag: KnowledgeActionGraph, domain: str) -> LinkGraph:
        """The domain's evidence pages and LINK edges as the store holds them: pages and each
        page's links keep the order of their `rank` (so walks match the source graph's
        exactly), and an edge's `relation` is its label."""
        pages = kag.nodes(domain, NodeType.EVIDENCE)
        pages.sort(key=lambda n: (n.payload.get("rank", 0), n.id))  # walks start in page order
        titles = {n.id: n.label or n.id for n in pages}
        edges = [e for e in kag.edges(domain, EdgeType.LINK) if e.src in titles and e.dst in titles]
        edges.sort(key=lambda e: (e.src, e.payload.get("rank", 0), e.dst))
        links: dict[str, list[str]] = {page: [] for page in titles}
        for edge in edges:
            links[edge.src].append(edge.dst)
        relations = {
            (e.src, e.dst): e.payload["relation"] for e in edges if "relation" in e.payload
        }
        return cls(titles, {p: tuple(t) for p, t in links.items()}, relations)


def load_wiki_corpus(paths: str | Path | Sequence[str | Path]) -> LinkGraph:
    """The link graph of a real wiki corpus: JSONL or Parquet rows with id, title, text and
    links, or a folder of Markdown / text documents (`wiki.read_wiki_corpus` has the formats
    and the checks)."""
    return LinkGraph.from_documents(read_wiki_corpus(paths).documents)


def write_pages(
    kag: KnowledgeActionGraph,
    domain: str,
    documents: Sequence[Document],
    kinds: Mapping[str, str] | None = None,
    relations: Mapping[tuple[str, str], str] | None = None,
) -> LinkGraph:
    """Pages become evidence nodes (their place in the corpus, and a kind when known) and
    links LINK edges (their order on the page, and a relation label when known); returns the
    graph read back from the store, which is what a proposer walks."""
    kinds, relations = kinds or {}, relations or {}
    kag.add_nodes(
        Node(
            id=d.id,
            domain=domain,
            type=NodeType.EVIDENCE,
            label=d.title,
            payload={"kind": kinds.get(d.id), "rank": rank},
        )
        for rank, d in enumerate(documents)
    )
    kag.add_edges(
        Edge(
            src=d.id,
            dst=link,
            type=EdgeType.LINK,
            domain=domain,
            payload=_link_payload(relations.get((d.id, link)), rank),
        )
        for d in documents
        for rank, link in enumerate(d.links)
    )
    return LinkGraph.from_kag(kag, domain)


def _link_payload(relation: str | None, rank: int) -> dict[str, Any]:
    return {"rank": rank} if relation is None else {"rank": rank, "relation": relation}


# ---- walks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Walk:
    """Pages p_0..p_n and the relation label of each hop p_i -> p_{i+1} (None: unknown)."""

    pages: tuple[str, ...]
    relations: tuple[str | None, ...]

    @property
    def hops(self) -> int:
        return len(self.relations)


def prefer_relations(unlabelled: float = 0.1) -> EdgeWeight:
    """The default selector: labelled links (phrasable as a hop) weigh 1, others `unlabelled`."""

    def weight(page: str, target: str, relation: str | None) -> float:
        return 1.0 if relation is not None else unlabelled

    return weight


@dataclass(frozen=True)
class WalkRules:
    """The walk's constraints; all configurable."""

    min_out_degree: int = 2  # for intermediate hops
    similarity: float = 0.85  # near-duplicate title threshold
    skip_disambiguation: bool = True


def admissible(
    graph: LinkGraph, path: Sequence[str], target: str, last: bool, rules: WalkRules
) -> bool:
    """Whether the walk at `path` may step to `target` (`last`: it is the final page)."""
    if target in path:
        return False
    title = graph.titles[target]
    if rules.skip_disambiguation and is_disambiguation(title):
        return False
    if not last and graph.out_degree(target) < rules.min_out_degree:
        return False
    return not any(near_duplicate(title, graph.titles[p], rules.similarity) for p in path)


def _step(
    graph: LinkGraph,
    path: list[str],
    rng: random.Random,
    last: bool,
    rules: WalkRules,
    weight: EdgeWeight,
) -> str | None:
    page = path[-1]
    options: list[tuple[str, float]] = []
    for target in graph.links.get(page, ()):
        w = weight(page, target, graph.relation(page, target))
        if w > 0 and admissible(graph, path, target, last, rules):
            options.append((target, w))
    if not options:
        return None
    return rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]


def _start_pages(graph: LinkGraph, rules: WalkRules) -> list[str]:
    return [
        p
        for p in graph.titles
        if graph.out_degree(p) >= 1
        and not (rules.skip_disambiguation and is_disambiguation(graph.titles[p]))
    ]


def random_walk(
    graph: LinkGraph,
    rng: random.Random,
    length: int,
    *,
    start: str | None = None,
    rules: WalkRules | None = None,
    weight: EdgeWeight | None = None,
    attempts: int = 20,
) -> Walk | None:
    """A walk of `length` hops, or None when `attempts` tries all hit a dead end.

    Without `start`, each attempt starts from a random page with at least one out-link.
    """
    rules = rules or WalkRules()
    weight = weight or prefer_relations()
    starts = [start] if start is not None else _start_pages(graph, rules)
    if not starts or length < 1:
        return None
    for _ in range(attempts):
        path = [rng.choice(starts)]
        for hop in range(length):
            target = _step(graph, path, rng, hop == length - 1, rules, weight)
            if target is None:
                break
            path.append(target)
        if len(path) == length + 1:
            labels = tuple(graph.relation(a, b) for a, b in pairwise(path))
            return Walk(tuple(path), labels)
    return None
