"""The search domain as one `DomainSpec`: its level, its world (a seeded encyclopedia written
as a corpus, or a user's corpus, searched with BM25), its proposer, expert, no-tool guesser
and held-out split."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from longhorizon.core.task import Task
from longhorizon.domains.search.corpus_world import open_corpus_world
from longhorizon.domains.search.encyclopedia import CORPUS_FILE, Encyclopedia
from longhorizon.domains.search.entities import EncyclopediaConfig
from longhorizon.domains.search.expert import expert_script
from longhorizon.domains.search.graph import LinkGraph, write_pages
from longhorizon.domains.search.level import SearchLevel
from longhorizon.domains.search.proposers import SearchProposer
from longhorizon.domains.search.tasks import (
    DOMAIN,
    guess_without_tools,
    propose_stratified,
    search_protocol,
    tool_steps,
)
from longhorizon.domains.search.verify import EVIDENCE_PATH, VERIFIERS, verify
from longhorizon.domains.spec import DomainSpec, World, fixed_turn_tokens
from longhorizon.harness.agent import Script
from longhorizon.kag import Edge, EdgeType, KnowledgeActionGraph, Node, NodeType
from longhorizon.tools.corpus import CorpusIndex

__all__ = ["SPEC", "SearchLevel", "SearchProposer", "guess_without_tools", "load_into_kag"]

# A solve with fewer tool steps than a one-hop walk (two pages, a search and a visit each)
# used no evidence: rejected as uninformative. Longer walks are levels (`SearchLevel.hops`).
MIN_TOOL_STEPS = tool_steps(1)
CORPUS_DIR = "corpus"


def load_into_kag(encyclopedia: Encyclopedia, kag: KnowledgeActionGraph) -> LinkGraph:
    """Pages become evidence nodes (with the entity's kind and the page's place in the corpus)
    and hyperlinks LINK edges (with their order on the page and relation label); each page's
    entity and its facts (attribute values) are entity and fact nodes the page supports, a
    fact depending on its entity. Returns the link graph read back from the store, which is
    what the proposer walks."""
    kinds = {e.id: e.kind for e in encyclopedia.entities}
    with kag.transaction():
        graph = write_pages(kag, DOMAIN, encyclopedia.documents, kinds, encyclopedia.edge_labels())
        kag.add_nodes(_entity_nodes(encyclopedia))
        kag.add_edges(_entity_edges(encyclopedia))
    return graph


def _entity_nodes(encyclopedia: Encyclopedia) -> Iterator[Node]:
    for e in encyclopedia.entities:
        yield Node(
            id=f"entity/{e.id}",
            domain=DOMAIN,
            type=NodeType.ENTITY,
            label=e.name,
            payload={"kind": e.kind},
        )
        for attribute, value in sorted(e.attributes.items()):
            yield Node(
                id=f"fact/{e.id}/{attribute}",
                domain=DOMAIN,
                type=NodeType.FACT,
                label=f"{attribute} of {e.name}",
                payload={"attribute": attribute, "value": value},
            )


def _entity_edges(encyclopedia: Encyclopedia) -> Iterator[Edge]:
    for e in encyclopedia.entities:  # the page (evidence) supports its entity and facts
        yield Edge(src=e.id, dst=f"entity/{e.id}", type=EdgeType.SUPPORT, domain=DOMAIN)
        for attribute in sorted(e.attributes):
            fact = f"fact/{e.id}/{attribute}"
            yield Edge(src=e.id, dst=fact, type=EdgeType.SUPPORT, domain=DOMAIN)
            yield Edge(src=fact, dst=f"entity/{e.id}", type=EdgeType.DEPENDENCY, domain=DOMAIN)


@lru_cache(maxsize=4)
def encyclopedia(entities: int, seed: int) -> Encyclopedia:
    """The seeded world (deterministic in its config), generated once per process."""
    return Encyclopedia.generate(EncyclopediaConfig(n_entities=entities, seed=seed))


def open_world(level: SearchLevel, seed: int, resource_dir: Path) -> World:
    """The encyclopedia of `level.entities` pages, or the user's corpus at `level.corpus`,
    written under `resource_dir` as the corpus the tools read."""
    if level.corpus is not None:
        return open_corpus_world(level, seed, resource_dir / CORPUS_DIR)
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
    description="multi-hop questions over a seeded encyclopedia or a user's corpus, solved "
    "with search and visit",
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
    turn_tokens=fixed_turn_tokens(85),  # results/tiny-six-seed0-199ecb0/turn-lengths.json
    smoke_level=SearchLevel.smoke,
)
