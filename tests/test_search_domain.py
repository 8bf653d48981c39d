"""The search domain: seeded encyclopedia, constrained walks, masked multi-hop questions,
verifiers, and the scripted expert solving tasks through the real harness."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from longhorizon.core import Budgets, ContextStrategy, Status, Task, Trajectory
from longhorizon.domains.search import (
    Encyclopedia,
    EncyclopediaConfig,
    Entity,
    LinkGraph,
    Walk,
    WalkRules,
    expert_script,
    load_wiki_corpus,
    near_duplicate,
    propose_task,
    propose_tasks,
    random_walk,
    task_from_walk,
    verify_search,
    visited_pages,
)
from longhorizon.domains.search.schema import split_label
from longhorizon.domains.search.spec import SearchLevel, SearchProposer, encyclopedia, open_world
from longhorizon.domains.search.tasks import question_hop_weight
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.harness.context import DIGEST_HEADER
from longhorizon.kag import EdgeType, KnowledgeActionGraph, NodeType
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import Corpus, CorpusIndex, Document


@pytest.fixture(scope="module")
def small() -> Encyclopedia:
    return Encyclopedia.generate(EncyclopediaConfig(n_entities=300, seed=7))


# ---- the encyclopedia --------------------------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    config = EncyclopediaConfig(n_entities=300, seed=11)
    a = Encyclopedia.generate(config).write(tmp_path / "a")
    b = Encyclopedia.generate(config).write(tmp_path / "b")
    c = Encyclopedia.generate(config.model_copy(update={"seed": 12})).write(tmp_path / "c")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    entities = [(tmp_path / d / "entities.jsonl").read_bytes() for d in "ab"]
    assert entities[0] == entities[1]


def test_default_size_is_fast_and_well_formed() -> None:
    start = time.perf_counter()
    enc = Encyclopedia.generate()
    assert time.perf_counter() - start < 10
    assert len(enc) == len(enc.documents) == 3000
    assert {e.kind for e in enc.entities} >= {"person", "city", "country", "company", "book"}
    names = [e.name.lower() for e in enc.entities]
    assert len(set(names)) == len(names)
    # Deliberate near-duplicates exist ("Varo" and "Varo River").
    cities = {e.name for e in enc.by_kind["city"]}
    assert any(r.name.removesuffix(" River") in cities for r in enc.by_kind["river"])


def test_pages_state_attributes_and_name_their_links(small: Encyclopedia) -> None:
    for entity, doc in zip(small.entities, small.documents, strict=True):
        assert doc.id == entity.id and doc.title == entity.name
        for target in entity.relations.values():
            assert target in doc.links
        for link in doc.links:
            assert small.name(link) in doc.text
        for key, value in entity.attributes.items():
            if isinstance(value, int):
                assert re.search(rf"\b{value:,}\b|\b{value}\b", doc.text), (key, doc.text)


def test_written_corpus_loads_as_the_same_graph(small: Encyclopedia, tmp_path: Path) -> None:
    path = small.write(tmp_path)
    loaded = load_wiki_corpus(path)
    assert loaded.links == small.graph().links and not loaded.relations
    again = Encyclopedia.read(tmp_path)
    assert again.documents == small.documents
    assert [e.to_json() for e in again.entities] == [e.to_json() for e in small.entities]


def test_wiki_corpus_from_parquet_resolves_title_links(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "title": "Paris", "text": "Capital of France.", "links": ["France", "2", "1"]},
        {"id": "2", "title": "France", "text": "A country.", "links": ["Paris", "Nowhere"]},
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "wiki.parquet")
    graph = load_wiki_corpus(tmp_path / "wiki.parquet")
    assert graph.links == {"1": ("2",), "2": ("1",)}  # by title, deduplicated, no self/dangling
    assert graph.in_degree("1") == graph.out_degree("1") == 1


# ---- walks -------------------------------------------------------------------------------------


def test_near_duplicate_titles() -> None:
    assert near_duplicate("Varo", "Varo River")
    assert near_duplicate("University of Varo", "Varo")
    assert near_duplicate("Paris (disambiguation)", "Paris")
    assert near_duplicate("Kemaria", "Kemariya")
    assert not near_duplicate("Varo", "Kemaria")


@pytest.mark.parametrize("min_out_degree", [2, 4])
def test_walk_constraints_hold(small: Encyclopedia, min_out_degree: int) -> None:
    graph = small.graph()
    rules = WalkRules(min_out_degree=min_out_degree)
    rng = random.Random(0)
    walks = [random_walk(graph, rng, rng.randint(2, 4), rules=rules) for _ in range(150)]
    walks = [w for w in walks if w is not None]
    assert len(walks) > 100
    for walk in walks:
        pages = walk.pages
        assert len(set(pages)) == len(pages) == walk.hops + 1
        assert all(b in graph.links[a] for a, b in pairwise(pages))
        assert walk.relations == tuple(graph.relation(a, b) for a, b in pairwise(pages))
        assert all(graph.out_degree(p) >= min_out_degree for p in pages[1:-1])
        titles = [graph.titles[p] for p in pages]
        assert not any(near_duplicate(a, b) for i, a in enumerate(titles) for b in titles[i + 1 :])


def test_walk_skips_near_duplicates_disambiguation_and_stubs() -> None:
    titles = {
        "a": "Varo",
        "b": "Varo River",
        "c": "Lumo (disambiguation)",
        "d": "Stub",
        "e": "Kemaria",
        "f": "Tarsin",
        "g": "Orlo",
    }
    links = {
        "a": ("b", "c", "d", "e"),
        "b": ("f", "g"),
        "c": ("f", "g"),
        "d": ("f",),
        "e": ("f", "g"),
    }
    graph = LinkGraph(titles, {k: links.get(k, ()) for k in titles})
    rng = random.Random(0)
    for _ in range(30):
        walk = random_walk(graph, rng, 2, start="a")
        assert walk is not None and walk.pages[1] == "e"
    assert random_walk(graph, rng, 2, start="a", rules=WalkRules(min_out_degree=3)) is None


# ---- tasks -------------------------------------------------------------------------------------


def make_entity(kind: str, name: str, **relations: str) -> Entity:
    attributes: dict[str, dict[str, int | str]] = {
        "country": {"founded": 1800, "population": 1_000_000},
        "city": {"founded": 1500, "population": 50_000},
        "university": {"founded": 1700},
        "person": {"born": 1950, "occupation": "chemist"},
        "company": {"founded": 1990, "industry": "mining", "employees": 300},
    }
    return Entity(name.replace(" ", "_"), kind, name, dict(attributes[kind]), relations)


def tiny_encyclopedia(second_hq: str) -> Encyclopedia:
    """Two companies; both headquartered in Varo when second_hq is "Varo"."""
    return Encyclopedia(
        [
            make_entity("country", "Kemaria", capital="Varo"),
            make_entity("city", "Varo", located_in="Kemaria"),
            make_entity("city", "Lumo", located_in="Kemaria"),
            make_entity("university", "Tarsin College", location="Lumo"),
            make_entity("person", "Ana Petrin", birthplace="Lumo", alma_mater="Tarsin_College"),
            make_entity("person", "Bo Kovel", birthplace="Varo", alma_mater="Tarsin_College"),
            make_entity("company", "Orlo Works", founder="Ana_Petrin", headquarters="Varo"),
            make_entity("company", "Zumi Labs", founder="Bo_Kovel", headquarters=second_hq),
        ]
    )


def test_ambiguous_hops_are_rejected() -> None:
    walk = Walk(("Varo", "Orlo_Works", "Ana_Petrin"), ("~headquarters", "founder"))
    ambiguous = tiny_encyclopedia(second_hq="Varo")
    assert task_from_walk(ambiguous, walk, random.Random(0)) is None
    assert question_hop_weight(ambiguous)("Varo", "Orlo_Works", "~headquarters") < 1
    unique = tiny_encyclopedia(second_hq="Lumo")
    task = task_from_walk(unique, walk, random.Random(0), named_start_rate=1.0)
    assert task is not None
    assert "the founder of the company headquartered in Varo" in task.instruction
    assert task.evidence == ["Varo", "Orlo_Works", "Ana_Petrin"]
    # Whatever the proposer accepts on the ambiguous graph never hops through Varo's companies.
    rng = random.Random(1)
    for _ in range(200):
        proposed = propose_task(ambiguous, rng, hops=(1, 3), rules=WalkRules(min_out_degree=1))
        if proposed is not None:
            hops = zip(proposed.evidence, proposed.provenance.extra["relations"], strict=False)
            assert ("Varo", "~headquarters") not in set(hops)


def test_questions_mask_the_chain_and_the_answer(small: Encyclopedia) -> None:
    tasks = propose_tasks(small, 40, seed=3)
    assert len(tasks) == 40
    assert [t.id for t in propose_tasks(small, 40, seed=3)] == [t.id for t in tasks]
    for task in tasks:
        walk = task.provenance.extra["walk"]
        assert task.evidence == walk and 2 <= len(walk) - 1 <= 4
        for page in walk[1:]:
            assert small.name(page).lower() not in task.instruction.lower()
        assert not re.search(rf"(?<!\w){re.escape(task.answer or '')}(?!\w)", task.instruction)
        for page, label in zip(walk, task.provenance.extra["relations"], strict=False):
            relation, inverse = split_label(label)
            assert not inverse or small.subjects(relation, page) == [walk[walk.index(page) + 1]]
        assert [v.name for v in task.verifiers] == ["exact_match", "evidence_path"]
        assert task.verifiers[1].params["pages"] == walk
        assert task.protocol.tools == ("search", "visit", "python")
        assert task.provenance.generator and task.provenance.seed == 3


def test_verify_search_checks_answer_and_evidence(small: Encyclopedia) -> None:
    (task,) = propose_tasks(small, 1, seed=5)
    assert all(v.passed for v in verify_search(task, task.answer, task.evidence))
    partial = verify_search(task, task.answer.upper(), task.evidence[:-1])  # type: ignore[union-attr]
    assert [v.passed for v in partial] == [True, False]
    assert partial[1].details["missing"] == task.evidence[-1:]
    assert [v.passed for v in verify_search(task, "nope", task.evidence)] == [False, True]


# ---- the expert through the real harness -------------------------------------------------------


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def run_expert(
    enc: Encyclopedia,
    tasks: list[Task],
    renderer: ChatRenderer,
    tmp_path: Path,
    error_rate: float = 0.0,
) -> list[Trajectory]:
    index = CorpusIndex.open(enc.write(tmp_path / "corpus"))

    async def run_all() -> list[Trajectory]:
        out = []
        for task in tasks:
            runner = EpisodeRunner(
                ScriptedAgent(renderer, expert_script(task, enc, error_rate=error_rate)),
                lambda t: build_toolset(t.protocol.tools),
                HarnessConfig(workdir=tmp_path / "work"),
                verify=verify_search,  # the runner hook sees the trajectory: answer and visits
                resources={"corpus_index": index},
            )
            out.append(await runner.run(task, task.id))
        return out

    return asyncio.run(run_all())


def test_expert_solves_tasks_end_to_end(
    small: Encyclopedia, renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = propose_tasks(small, 5, seed=1)
    trajectories = run_expert(small, tasks, renderer, tmp_path)
    for task, traj in zip(tasks, trajectories, strict=True):
        assert traj.status is Status.COMPLETED, traj.status_reason
        verdicts = verify_search(task, traj)
        assert [v.verifier for v in verdicts] == ["exact_match", "evidence_path"]
        assert all(v.passed for v in verdicts), verdicts
        assert traj.passed and traj.verdicts == verdicts
        visited = {r for s in traj.steps if s.action.function.name == "visit" for r in s.state_refs}
        assert set(task.evidence) <= visited == set(visited_pages(traj))
        assert all(s.error is None for s in traj.steps)
        # Multi-hop: one search and one visit per chain page at least.
        names = [s.action.function.name for s in traj.steps]
        assert names.count("visit") >= len(task.evidence) and "search" in names
        # The answer comes after the last evidence page was read.
        last_visit = max(
            i
            for i, s in enumerate(traj.steps)
            if json.loads(s.action.function.arguments).get("id") == task.evidence[-1]
        )
        assert last_visit == len(traj.steps) - 1


def test_expert_errors_fail_a_verifier(
    small: Encyclopedia, renderer: ChatRenderer, tmp_path: Path
) -> None:
    tasks = propose_tasks(small, 5, seed=2)
    trajectories = run_expert(small, tasks, renderer, tmp_path, error_rate=1.0)
    for task, traj in zip(tasks, trajectories, strict=True):
        assert traj.status is Status.COMPLETED
        assert not all(v.passed for v in verify_search(task, traj))


def test_expert_resumes_after_compaction(
    small: Encyclopedia, renderer: ChatRenderer, tmp_path: Path
) -> None:
    (task,) = propose_tasks(small, 1, seed=0, hops=3)
    context = ContextStrategy(kind="compaction", compact_at=0.6)
    protocol = task.protocol.model_copy(
        update={"budgets": Budgets(max_context_tokens=3000), "context": context}
    )
    (traj,) = run_expert(
        small, [task.model_copy(update={"protocol": protocol})], renderer, tmp_path
    )
    assert any(DIGEST_HEADER in (m.content or "") for m in traj.messages)
    assert traj.status is Status.COMPLETED and all(v.passed for v in verify_search(task, traj))


def test_corpus_is_the_corpus_format(small: Encyclopedia, tmp_path: Path) -> None:
    corpus = Corpus.load(small.write(tmp_path))
    assert corpus.documents == small.documents
    assert all(isinstance(d, Document) and d.links for d in corpus)


# ---- the proposer walks the KAG ----------------------------------------------------------------
def _world_in_kag(tmp_path: Path) -> tuple[Any, KnowledgeActionGraph]:
    world = open_world(SearchLevel(entities=120, hops=(2, 3)), 0, tmp_path / "res")
    return world, KnowledgeActionGraph(tmp_path / "kag.db")


def test_the_link_graph_read_back_from_the_kag_is_the_encyclopedias(tmp_path: Path) -> None:
    world, kag = _world_in_kag(tmp_path)
    source = encyclopedia(120, 0).graph()
    with kag:
        world.load_kag(kag)
        stored = LinkGraph.from_kag(kag, "search")
    assert list(stored.titles.items()) == list(source.titles.items())  # in page order
    assert stored.links == source.links  # each page's links in the page's order
    assert stored.relations == source.relations


def test_each_page_supports_its_entity_and_facts_in_the_kag(tmp_path: Path) -> None:
    world, kag = _world_in_kag(tmp_path)
    source = encyclopedia(120, 0)
    with kag:
        world.load_kag(kag)
        entities = {n.id: n for n in kag.nodes("search", NodeType.ENTITY)}
        facts = {n.id: n for n in kag.nodes("search", NodeType.FACT)}
        support = {(e.src, e.dst) for e in kag.edges("search", EdgeType.SUPPORT)}
        depends = {(e.src, e.dst) for e in kag.edges("search", EdgeType.DEPENDENCY)}
    assert len(entities) == len(source.entities)
    assert len(facts) == sum(len(e.attributes) for e in source.entities) > len(entities)
    first = source.entities[0]
    node = entities[f"entity/{first.id}"]
    assert (node.label, node.payload) == (first.name, {"kind": first.kind})
    for attribute, value in first.attributes.items():
        fact = f"fact/{first.id}/{attribute}"
        assert facts[fact].payload == {"attribute": attribute, "value": value}
        assert (first.id, fact) in support and (fact, f"entity/{first.id}") in depends
    assert (first.id, f"entity/{first.id}") in support


def test_the_proposer_walks_what_the_store_holds(tmp_path: Path) -> None:
    import sqlite3

    world, kag = _world_in_kag(tmp_path)
    with kag:
        world.load_kag(kag)
    unchanged = [world.proposer.propose(random.Random(i)) for i in range(30)]
    # The same walks as on the in-memory graph: reading the KAG changed no task.
    memory = SearchProposer(encyclopedia(120, 0), (2, 3), 0)
    assert [t.id if t else None for t in unchanged] == [
        t.id if t else None for t in (memory.propose(random.Random(i)) for i in range(30))
    ]
    # Cut every link out of the pages the first walks used: no later walk can take them.
    used = {page for t in unchanged if t for page in t.provenance.extra["walk"][:-1]}
    with sqlite3.connect(tmp_path / "kag.db") as db:
        db.executemany("DELETE FROM edges WHERE src = ? AND type = 'link'", [(p,) for p in used])
    with KnowledgeActionGraph(tmp_path / "kag.db") as store:
        world.proposer.walk_on(LinkGraph.from_kag(store, "search"))
    changed = [world.proposer.propose(random.Random(i)) for i in range(30)]
    walks = [t.provenance.extra["walk"] for t in changed if t]
    assert walks and all(page not in used for walk in walks for page in walk[:-1])
    assert {t.id for t in changed if t}.isdisjoint(t.id for t in unchanged if t)
