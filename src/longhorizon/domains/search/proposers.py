"""The search domain's proposers: walks made questions, over the generated encyclopedia
(`SearchProposer`) or a user's corpus (`ChainProposer`); shortcuts make later walks longer."""

from __future__ import annotations

import random

from longhorizon.core.task import Task
from longhorizon.domains.search.chains import CorpusPages, propose_chain
from longhorizon.domains.search.encyclopedia import Encyclopedia
from longhorizon.domains.search.graph import LinkGraph
from longhorizon.domains.search.tasks import propose_task

__all__ = ["ChainProposer", "SearchProposer", "WalkProposer"]


class WalkProposer:
    """The hop count of each walk, and what rejections teach.

    The hop count is drawn from min..max hops by `weights` (one per hop count; None: uniform).
    A task rejected as too easy (a shortcut, or too few tool steps) although the solver
    solved it raises the minimum; a failed solve says nothing about ease.
    """

    def __init__(
        self,
        hops: tuple[int, int] = (2, 4),
        seed: int = 0,
        named_start_rate: float = 0.3,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        self.graph: LinkGraph | None = None  # None: the world's in-memory graph
        self.min_hops, self.max_hops = hops
        self.seed = seed
        self.named_start_rate = named_start_rate
        self.weights = (
            dict(zip(range(hops[0], hops[1] + 1), weights, strict=True)) if weights else None
        )

    def walk_on(self, graph: LinkGraph) -> None:
        """Walk this graph (synthesis gives the one read from the KAG) instead of the
        world's own: a page or link the store lacks is never walked."""
        self.graph = graph

    def propose(self, rng: random.Random) -> Task | None:
        return self._task(rng, self._hops(rng))

    def _task(self, rng: random.Random, hops: int | tuple[int, int]) -> Task | None:
        raise NotImplementedError

    def _hops(self, rng: random.Random) -> int | tuple[int, int]:
        levels = list(range(self.min_hops, self.max_hops + 1))
        if self.weights is None or not any(self.weights[h] for h in levels):
            return (self.min_hops, self.max_hops)  # uniform (the task builder draws it)
        return rng.choices(levels, weights=[self.weights[h] for h in levels])[0]

    def feedback(self, task: Task, reasons: list[str]) -> None:
        solved = not any(r.startswith("invalid") for r in reasons)
        too_easy = any(r.startswith(("shortcut", "uninformative")) for r in reasons)
        if solved and too_easy and self.min_hops < self.max_hops:
            self.min_hops += 1


class SearchProposer(WalkProposer):
    """Constrained hyperlink walks over the encyclopedia made multi-hop questions."""

    def __init__(
        self,
        encyclopedia: Encyclopedia,
        hops: tuple[int, int] = (2, 4),
        seed: int = 0,
        named_start_rate: float = 0.3,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(hops, seed, named_start_rate, weights)
        self.encyclopedia = encyclopedia

    def _task(self, rng: random.Random, hops: int | tuple[int, int]) -> Task | None:
        return propose_task(
            self.encyclopedia,
            rng,
            hops,
            seed=self.seed,
            named_start_rate=self.named_start_rate,
            graph=self.graph,
        )


class ChainProposer(WalkProposer):
    """Walks over a corpus's links, from the synthesis split's start pages, made chains of
    cues (`chains.py`)."""

    def __init__(
        self,
        pages: CorpusPages,
        hops: tuple[int, int] = (2, 4),
        seed: int = 0,
        named_start_rate: float = 0.3,
        weights: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__(hops, seed, named_start_rate, weights)
        self.pages = pages
        self.starts = pages.starts(heldout=False)

    def walk_on(self, graph: LinkGraph) -> None:
        super().walk_on(graph)
        self.starts = [p for p in self.pages.starts(heldout=False) if graph.out_degree(p)]

    def _task(self, rng: random.Random, hops: int | tuple[int, int]) -> Task | None:
        return propose_chain(
            self.pages,
            rng,
            hops,
            self.starts,
            seed=self.seed,
            named_start_rate=self.named_start_rate,
            graph=self.graph,
        )
