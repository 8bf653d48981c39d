"""The search domain's world over a user's corpus (`SearchLevel.corpus`): its pages are what
search and visit serve, its links (through the KAG) what walks follow, and its tasks chains
of cues (`chains.py`) solved by the chain expert."""

from __future__ import annotations

from pathlib import Path

from longhorizon.core.task import Task
from longhorizon.domains.search.chain_expert import ChainExpert
from longhorizon.domains.search.chains import (
    CorpusPages,
    check_walkable,
    propose_chain_stratified,
)
from longhorizon.domains.search.encyclopedia import CORPUS_FILE
from longhorizon.domains.search.graph import load_wiki_corpus, write_pages
from longhorizon.domains.search.level import SearchLevel
from longhorizon.domains.search.proposers import ChainProposer
from longhorizon.domains.search.tasks import DOMAIN, guess_without_tools
from longhorizon.domains.search.wiki import read_wiki_corpus
from longhorizon.domains.spec import World
from longhorizon.harness.agent import Script
from longhorizon.kag import KnowledgeActionGraph
from longhorizon.tools.corpus import CorpusIndex

__all__ = ["open_corpus_world"]


def open_corpus_world(level: SearchLevel, seed: int, corpus_dir: Path) -> World:
    """The corpus at `level.corpus`, checked and written (links as page ids) into
    `corpus_dir`; CorpusError names the file and row of a bad page, or says why the corpus
    can give no task."""
    if level.corpus is None:
        raise ValueError("open_corpus_world needs a level with a corpus")
    wiki = read_wiki_corpus(level.corpus)
    path = wiki.write(corpus_dir / CORPUS_FILE)
    pages = CorpusPages(wiki.documents, load_wiki_corpus(path))
    check_walkable(pages, level.levels(), str(level.corpus))
    index = CorpusIndex.open(path)
    proposer = ChainProposer(pages, level.hops, seed, level.named_start_rate, level.hop_weights)

    def expert(task: Task) -> Script:
        return ChainExpert(task, error_rate=level.expert_error_rate, seed=seed)

    def heldout(n: int, heldout_seed: int) -> list[Task]:
        return propose_chain_stratified(
            pages, n, level.levels(), seed=heldout_seed, named_start_rate=level.named_start_rate
        )

    def load(kag: KnowledgeActionGraph) -> None:
        proposer.walk_on(write_pages(kag, DOMAIN, wiki.documents))

    return World(
        proposer=proposer,
        heldout=heldout,
        expert=expert,
        guesser=guess_without_tools,
        resources={"corpus_index": index},
        load_kag=load,
        info={
            "corpus": str(level.corpus),
            "pages": len(wiki.documents),
            "links": wiki.n_links,
            "dangling_links": wiki.dangling,
        },
    )
