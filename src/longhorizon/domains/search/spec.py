"""The search domain as one `DomainSpec`: its level, its world (a seeded encyclopedia written
as a corpus, searched with BM25), its proposer, expert, no-tool guesser and held-out split."""

from __future__ import annotations

import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.search.encyclopedia import CORPUS_FILE, Encyclopedia
from longhorizon.domains.search.entities import EncyclopediaConfig
from longhorizon.domains.search.expert import expert_script
from longhorizon.domains.search.graph import LinkGraph
from longhorizon.domains.search.tasks import (
    DOMAIN,
    propose_stratified,
    propose_task,
    search_protocol,
    tool_steps,
)
from longhorizon.domains.search.verify import EVIDENCE_PATH, VERIFIERS, verify
from longhorizon.domains.spec import DomainSpec, World
from longhorizon.harness.agent import Script
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.corpus import CorpusIndex

__all__ = ["SPEC", "SearchLevel", "SearchProposer", "guess_without_tools", "load_into_kag"]

# A solve with fewer tool steps than a one-hop walk (two pages, a search and a visit each)
# used no evidence: rejected as uninformative. Longer walks are levels (`SearchLevel.hops`).
MIN_TOOL_STEPS = tool_steps(1)
CORPUS_DIR = "corpus"
_CANDIDATE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+|[A-Z][\w'-]*(?: [A-Z][\w'-]*)*)")


class SearchLevel(BaseModel):
    """The world's size and the walks' length; synthesis and the held-out split share it.

    `hops: [lo, hi]` is the horizon curriculum: a task of h hops reads h + 1 pages, so it
    needs 2(h + 1) tool steps. Synthesis draws h from lo..hi by `hop_weights` (uniform when
    unset); the held-out split goes round the levels, so each gets the same share of tasks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entities: int = Field(default=3000, ge=20, description="encyclopedia size")
    hops: tuple[int, int] = Field(default=(2, 4), description="walk length, inclusive range")
    hop_weights: tuple[float, ...] | None = Field(
        default=None,
        description="synthesis: relative share of each hop count lo..hi (default: uniform)",
    )
    named_start_rate: float = Field(
        default=0.3, ge=0, le=1, description="start named, not described"
    )
    expert_error_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="the scripted expert errs (a wrong link, an early answer) as a real "
        "solver would, so the verifier has failures to reject",
    )

    @model_validator(mode="after")
    def _hops_in_order(self) -> SearchLevel:
        if not 1 <= self.hops[0] <= self.hops[1]:
            raise ValueError(f"hops {self.hops}: need 1 <= min <= max")
        weights = self.hop_weights
        if weights is not None and (
            len(weights) != len(self.levels()) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ValueError(
                f"hop_weights {weights}: need one weight >= 0 per hop count "
                f"{self.hops[0]}..{self.hops[1]} ({len(self.levels())}), not all 0"
            )
        return self

    def levels(self) -> list[int]:
        """The hop counts of the curriculum, lo..hi."""
        return list(range(self.hops[0], self.hops[1] + 1))

    def tool_steps(self) -> int:
        """Tool steps the longest walk of the level needs."""
        return tool_steps(self.hops[1])


class SearchProposer:
    """Constrained hyperlink walks made multi-hop questions; shortcuts make later walks longer.

    The hop count is drawn from min..max hops by `weights` (one per hop count; None: uniform).
    A task rejected as too easy (a shortcut, or too few tool steps) although the solver
    solved it raises the minimum; a failed solve says nothing about ease.
    """

    def __init__(
        self,
        encyclopedia: Encyclopedia,
        hops: tuple[int, int] = (2, 4),
        seed: int = 0,
        named_start_rate: float = 0.3,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        self.encyclopedia = encyclopedia
        self.graph: LinkGraph | None = None  # None: the encyclopedia's in-memory graph
        self.min_hops, self.max_hops = hops
        self.seed = seed
        self.named_start_rate = named_start_rate
        self.weights = (
            dict(zip(range(hops[0], hops[1] + 1), weights, strict=True)) if weights else None
        )

    def walk_on(self, graph: LinkGraph) -> None:
        """Walk this graph (synthesis gives the one read from the KAG) instead of the
        encyclopedia's own: a page or link the store lacks is never walked."""
        self.graph = graph

    def propose(self, rng: random.Random) -> Task | None:
        return propose_task(
            self.encyclopedia,
            rng,
            self._hops(rng),
            seed=self.seed,
            named_start_rate=self.named_start_rate,
            graph=self.graph,
        )

    def _hops(self, rng: random.Random) -> int | tuple[int, int]:
        levels = list(range(self.min_hops, self.max_hops + 1))
        if self.weights is None or not any(self.weights[h] for h in levels):
            return (self.min_hops, self.max_hops)  # uniform (propose_task draws it)
        return rng.choices(levels, weights=[self.weights[h] for h in levels])[0]

    def feedback(self, task: Task, reasons: list[str]) -> None:
        solved = not any(r.startswith("invalid") for r in reasons)
        too_easy = any(r.startswith(("shortcut", "uninformative")) for r in reasons)
        if solved and too_easy and self.min_hops < self.max_hops:
            self.min_hops += 1


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: answer with the last name or number the question itself contains."""
    question = next((m.content or "" for m in messages if m.role == "user"), "")
    found = _CANDIDATE.findall(question)
    return f"<answer>{found[-1] if found else 'unknown'}</answer>"


def load_into_kag(encyclopedia: Encyclopedia, kag: KnowledgeActionGraph) -> LinkGraph:
    """Pages become evidence nodes (with the entity's kind and the page's place in the corpus)
    and hyperlinks LINK edges (with their order on the page and relation label); returns the
    link graph read back from the store, which is what the proposer walks."""
    kinds = {e.id: e.kind for e in encyclopedia.entities}
    labels = encyclopedia.edge_labels()
    kag.add_nodes(
        Node(
            id=d.id,
            domain=DOMAIN,
            type=NodeType.EVIDENCE,
            label=d.title,
            payload={"kind": kinds.get(d.id), "rank": rank},
        )
        for rank, d in enumerate(encyclopedia.corpus())
    )
    kag.add_edges(
        Edge(
            src=d.id,
            dst=link,
            type=EdgeType.LINK,
            domain=DOMAIN,
            payload=_link(labels, d.id, link, rank),
        )
        for d in encyclopedia.corpus()
        for rank, link in enumerate(d.links)
    )
    return LinkGraph.from_kag(kag, DOMAIN)


def _link(labels: dict[tuple[str, str], str], src: str, dst: str, rank: int) -> dict[str, Any]:
    relation = labels.get((src, dst))
    return {"rank": rank} if relation is None else {"rank": rank, "relation": relation}


@lru_cache(maxsize=4)
def encyclopedia(entities: int, seed: int) -> Encyclopedia:
    """The seeded world (deterministic in its config), generated once per process."""
    return Encyclopedia.generate(EncyclopediaConfig(n_entities=entities, seed=seed))


def open_world(level: SearchLevel, seed: int, resource_dir: Path) -> World:
    """The encyclopedia of `level.entities` pages, its corpus written under `resource_dir`."""
    world = encyclopedia(level.entities, seed)
    index = CorpusIndex.open(world.write(resource_dir / CORPUS_DIR))

    def expert(task: Task) -> Script:
        return expert_script(task, world, error_rate=level.expert_error_rate, seed=seed)

    def heldout(n: int, heldout_seed: int) -> list[Task]:
        return propose_stratified(world, n, level.levels(), seed=heldout_seed)

    proposer = SearchProposer(world, level.hops, seed, level.named_start_rate, level.hop_weights)
    return World(
        proposer=proposer,
        heldout=heldout,
        expert=expert,
        guesser=guess_without_tools,
        resources={"corpus_index": index},
        load_kag=lambda kag: proposer.walk_on(load_into_kag(world, kag)),
        info={"n_entities": level.entities, "seed": seed},
    )


def corpus_files(synth_out: Path) -> list[Path]:
    return [synth_out / CORPUS_DIR / CORPUS_FILE]


SPEC: DomainSpec[SearchLevel] = DomainSpec(
    name=DOMAIN,
    description="multi-hop questions over a seeded encyclopedia, solved with search and visit",
    level=SearchLevel,
    protocol=search_protocol(),
    verdicts=verify,
    verifiers=VERIFIERS,
    open_world=open_world,
    process_verifiers=frozenset({EVIDENCE_PATH}),
    min_tool_steps=MIN_TOOL_STEPS,
    heldout_size=100,
    corpus=corpus_files,
    tool_steps=SearchLevel.tool_steps,
)
