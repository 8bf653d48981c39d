"""The search domain wired for self-play: encyclopedia -> KAG -> proposer, expert, guesser."""

from __future__ import annotations

import re
from pathlib import Path

from longhorizon.core.messages import Message
from longhorizon.core.task import Task
from longhorizon.domains.search import (
    Encyclopedia,
    EncyclopediaConfig,
    expert_script,
    propose_task,
    verify_search,
)
from longhorizon.harness.agent import Agent, ScriptedAgent
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.types import Domain
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusIndex

MIN_TOOL_STEPS = 5  # one hop is a search and a read per page (4 steps): a lookup, not a horizon
_CANDIDATE = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+|[A-Z][\w'-]*(?: [A-Z][\w'-]*)*)")


class SearchProposer:
    """Constrained hyperlink walks made multi-hop questions; shortcuts make later walks longer."""

    def __init__(
        self,
        encyclopedia: Encyclopedia,
        hops: tuple[int, int] = (2, 4),
        seed: int = 0,
        named_start_rate: float = 0.3,
    ) -> None:
        self.encyclopedia = encyclopedia
        self.min_hops, self.max_hops = hops
        self.seed = seed
        self.named_start_rate = named_start_rate

    def propose(self, rng) -> Task | None:  # type: ignore[no-untyped-def]
        hops = (self.min_hops, self.max_hops)
        return propose_task(
            self.encyclopedia, rng, hops, seed=self.seed, named_start_rate=self.named_start_rate
        )

    def feedback(self, task: Task, reasons: list[str]) -> None:
        too_easy = any(r.startswith(("shortcut", "uninformative")) for r in reasons)
        if too_easy and self.min_hops < self.max_hops:
            self.min_hops += 1


def guess_without_tools(messages: list[Message]) -> str:
    """The no-tool attempt: answer with the last name or number the question itself contains."""
    question = next((m.content or "" for m in messages if m.role == "user"), "")
    found = _CANDIDATE.findall(question)
    return f"<answer>{found[-1] if found else 'unknown'}</answer>"


def load_into_kag(encyclopedia: Encyclopedia, kag: KnowledgeActionGraph, domain: str) -> None:
    """Pages become evidence nodes (with the entity's kind) and hyperlinks LINK edges."""
    kinds = {e.id: e.kind for e in encyclopedia.entities}
    kag.add_nodes(
        Node(
            id=d.id,
            domain=domain,
            type=NodeType.EVIDENCE,
            label=d.title,
            payload={"kind": kinds.get(d.id)},
        )
        for d in encyclopedia.corpus()
    )
    kag.add_edges(
        Edge(src=d.id, dst=link, type=EdgeType.LINK, domain=domain)
        for d in encyclopedia.corpus()
        for link in d.links
    )


def search_domain(
    out: Path,
    kag: KnowledgeActionGraph,
    renderer: ChatRenderer,
    *,
    n_entities: int = 3000,
    seed: int = 0,
    model: Agent | None = None,
    expert_error_rate: float = 0.1,
) -> Domain:
    """The search domain over a seeded encyclopedia; `model` replaces the scripted roles.

    The scripted expert errs at `expert_error_rate` (a wrong link, an answer before reading the
    last page), as a real solver would, so the verifier has failures to reject.
    """
    encyclopedia = Encyclopedia.generate(EncyclopediaConfig(n_entities=n_entities, seed=seed))
    corpus_path = encyclopedia.write(out / "corpus")
    load_into_kag(encyclopedia, kag, "search")

    def expert(task: Task) -> Agent:
        script = expert_script(task, encyclopedia, error_rate=expert_error_rate, seed=seed)
        return ScriptedAgent(renderer, script, "search-expert")

    def guesser(task: Task) -> Agent:
        return ScriptedAgent(renderer, guess_without_tools, "no-tool-guesser")

    return Domain(
        name="search",
        proposer=SearchProposer(encyclopedia, seed=seed),
        solver=(lambda t: model) if model else expert,
        guesser=(lambda t: model) if model else guesser,
        toolset=lambda t: build_toolset(t.protocol.tools),
        verify=lambda task, traj: verify_search(task, traj),
        min_tool_steps=MIN_TOOL_STEPS,
        resources={"corpus_index": CorpusIndex.open(corpus_path)},
    )
