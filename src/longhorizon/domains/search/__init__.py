"""The long-horizon search domain: a seeded hyperlinked encyclopedia (or a user's wiki
corpus), constrained random walks, multi-hop questions with masked names (over a corpus:
chains of cues), their verifiers, and scripted experts that solve them through the real
harness with search and visit.

`SPEC` is the domain as the pipeline sees it (`longhorizon.domains.spec.DomainSpec`).
"""

from longhorizon.domains.search.chain_expert import ChainExpert
from longhorizon.domains.search.chains import (
    CorpusPages,
    propose_chain,
    propose_chain_stratified,
    task_from_chain,
)
from longhorizon.domains.search.encyclopedia import CORPUS_FILE, ENTITIES_FILE, Encyclopedia
from longhorizon.domains.search.entities import EncyclopediaConfig, Entity
from longhorizon.domains.search.expert import SearchExpert, expert_script
from longhorizon.domains.search.graph import (
    LinkGraph,
    Walk,
    WalkRules,
    load_wiki_corpus,
    near_duplicate,
    normalise_title,
    prefer_relations,
    random_walk,
    write_pages,
)
from longhorizon.domains.search.level import SearchLevel
from longhorizon.domains.search.proposers import ChainProposer, SearchProposer
from longhorizon.domains.search.spec import SPEC, load_into_kag
from longhorizon.domains.search.tasks import (
    DOMAIN,
    SEARCH_TOOLS,
    guess_without_tools,
    propose_stratified,
    propose_task,
    propose_tasks,
    question_hop_weight,
    search_protocol,
    task_from_walk,
    tool_steps,
)
from longhorizon.domains.search.verify import evidence_path, verify, verify_search, visited_pages
from longhorizon.domains.search.wiki import WikiCorpus, read_wiki_corpus

__all__ = [
    "CORPUS_FILE",
    "DOMAIN",
    "ENTITIES_FILE",
    "SEARCH_TOOLS",
    "SPEC",
    "ChainExpert",
    "ChainProposer",
    "CorpusPages",
    "Encyclopedia",
    "EncyclopediaConfig",
    "Entity",
    "LinkGraph",
    "SearchExpert",
    "SearchLevel",
    "SearchProposer",
    "Walk",
    "WalkRules",
    "WikiCorpus",
    "evidence_path",
    "expert_script",
    "guess_without_tools",
    "load_into_kag",
    "load_wiki_corpus",
    "near_duplicate",
    "normalise_title",
    "prefer_relations",
    "propose_chain",
    "propose_chain_stratified",
    "propose_stratified",
    "propose_task",
    "propose_tasks",
    "question_hop_weight",
    "random_walk",
    "read_wiki_corpus",
    "search_protocol",
    "task_from_chain",
    "task_from_walk",
    "tool_steps",
    "verify",
    "verify_search",
    "visited_pages",
    "write_pages",
]
