"""The long-horizon search domain: a seeded hyperlinked encyclopedia (or a real wiki corpus),
constrained random walks, multi-hop questions with masked names, their verifiers, and a
scripted expert that solves them through the real harness with search and visit.

`SPEC` is the domain as the pipeline sees it (`longhorizon.domains.spec.DomainSpec`).
"""

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
)
from longhorizon.domains.search.spec import (
    SPEC,
    SearchLevel,
    SearchProposer,
    guess_without_tools,
    load_into_kag,
)
from longhorizon.domains.search.tasks import (
    DOMAIN,
    SEARCH_TOOLS,
    propose_stratified,
    propose_task,
    propose_tasks,
    question_hop_weight,
    search_protocol,
    task_from_walk,
    tool_steps,
)
from longhorizon.domains.search.verify import evidence_path, verify, verify_search, visited_pages

__all__ = [
    "CORPUS_FILE",
    "DOMAIN",
    "ENTITIES_FILE",
    "SEARCH_TOOLS",
    "SPEC",
    "Encyclopedia",
    "EncyclopediaConfig",
    "Entity",
    "LinkGraph",
    "SearchExpert",
    "SearchLevel",
    "SearchProposer",
    "Walk",
    "WalkRules",
    "evidence_path",
    "expert_script",
    "guess_without_tools",
    "load_into_kag",
    "load_wiki_corpus",
    "near_duplicate",
    "normalise_title",
    "prefer_relations",
    "propose_stratified",
    "propose_task",
    "propose_tasks",
    "question_hop_weight",
    "random_walk",
    "search_protocol",
    "task_from_walk",
    "tool_steps",
    "verify",
    "verify_search",
    "visited_pages",
]
