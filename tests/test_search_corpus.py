"""The search domain over a user's corpus: the formats and their errors, chain questions from
walks over unlabelled links, synthesis with the chain expert, the held-out split, the CLI,
and the real-text corpus of numpy's and sympy's docstrings."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Status, Task, TaskStore, Trajectory
from longhorizon.domains.search import (
    SPEC,
    ChainExpert,
    CorpusPages,
    LinkGraph,
    SearchLevel,
    load_wiki_corpus,
    read_wiki_corpus,
    verify_search,
)
from longhorizon.domains.search.chains import CUE_CHARS, heldout_start
from longhorizon.domains.spec import HELDOUT_SEED
from longhorizon.domains.synth import domain_builder
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.kag import KnowledgeActionGraph, TaskStatus
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis import SelfPlay, SynthConfig
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusError, CorpusIndex, tokenize
from longhorizon.tools.knowledge import MAX_K

ROOT = Path(__file__).resolve().parents[1]


def generated_corpus(path: Path, pages: int = 40, seed: int = 0) -> Path:
    """A wiki of `pages` pages: made-up words as text, four links each (by id, or by title for
    every third), and a red link on every tenth page."""
    rng = random.Random(seed)

    def word() -> str:
        return "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))

    vocabulary = sorted({word() for _ in range(150)})
    titles = [f"Topic {word().title()} {i}" for i in range(pages)]
    rows = []
    for i in range(pages):
        words = rng.sample(vocabulary, 10)
        targets = rng.sample([j for j in range(pages) if j != i], 4)
        links = [titles[j] if n % 3 == 2 else f"p{j}" for n, j in enumerate(targets)]
        about, also = ", ".join(words[:5]), " and ".join(words[5:])
        text = f"Page {i} is about {about}. It also covers {also}."
        rows.append({"id": f"p{i}", "title": titles[i], "text": text, "links": links})
        if i % 10 == 0:
            rows[-1]["links"].append("Nowhere")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return generated_corpus(tmp_path / "wiki.jsonl")


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def source_links(path: Path) -> dict[str, set[str]]:
    """Each page's links as its row gives them, titles turned into ids."""
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    by_title = {r["title"]: r["id"] for r in rows}
    return {r["id"]: {by_title.get(link, link) for link in r["links"]} for r in rows}


# ---- formats -----------------------------------------------------------------------------------


def test_jsonl_links_by_id_or_title_and_red_links_dropped(corpus: Path) -> None:
    wiki = read_wiki_corpus(corpus)
    assert len(wiki.documents) == 40 and wiki.dangling == 4  # "Nowhere" on pages 0, 10, 20, 30
    assert wiki.n_links == 160
    expected = source_links(corpus)
    for doc in wiki.documents:
        assert set(doc.links) == expected[doc.id] - {"Nowhere"} and len(doc.links) == 4
    assert wiki.where["p3"] == f"{corpus}:4"
    assert load_wiki_corpus(corpus).links == {d.id: tuple(d.links) for d in wiki.documents}


def test_a_folder_of_markdown_and_text_documents(tmp_path: Path) -> None:
    (tmp_path / "topics").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "index.md").write_text(
        "# Home\nSee [[Alpha]], [the beta page](topics/beta.md), [a site](https://example.org)"
        " and [[Missing page|a red link]].\n"
    )
    (tmp_path / "alpha.txt").write_text("Alpha text, back to [[Home|the start]].\n")
    (tmp_path / "topics" / "beta.md").write_text("# Beta\nBack [home](../index.md#top).\n")
    (tmp_path / ".hidden" / "note.md").write_text("# Hidden\n[[Home]]\n")
    (tmp_path / "picture.png").write_bytes(b"\x89PNG")
    wiki = read_wiki_corpus(tmp_path)
    assert [(d.id, d.title, d.links) for d in wiki.documents] == [
        ("alpha", "alpha", ["index"]),
        ("index", "Home", ["alpha", "topics/beta"]),
        ("topics/beta", "Beta", ["index"]),
    ]
    assert wiki.documents[1].text.startswith("See [[Alpha]]")  # the heading is the title
    assert wiki.dangling == 1 and wiki.where["topics/beta"] == str(tmp_path / "topics/beta.md")


def _rows(*rows: dict[str, Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


GOOD = {"id": "a", "title": "A", "text": "x", "links": ["b"]}
BAD_CORPORA = {
    "no id": (_rows(GOOD, {"title": "B", "text": "y"}), "bad.jsonl:2: missing required field 'id'"),
    "no title": (
        _rows(GOOD, {"id": "b", "text": "y"}),
        "bad.jsonl:2: missing required field 'title' (a wiki page needs one: questions ask for "
        "titles)",
    ),
    "one title twice": (
        _rows(GOOD, {"id": "b", "title": "A", "text": "y"}),
        "bad.jsonl:2: duplicate title 'A' (first at {dir}/bad.jsonl:1)",
    ),
    "a comma in an id": (
        _rows(GOOD, {"id": "b, c", "title": "B", "text": "y"}),
        "bad.jsonl:2: id 'b, c' has a comma or line break",
    ),
    "links to nothing": (
        _rows({**GOOD, "links": ["Nowhere", "a"]}, {"id": "b", "title": "B", "text": "y"}),
        "bad.jsonl: no link names another page of the corpus (1 name no page, the first at "
        "{dir}/bad.jsonl:1: 'Nowhere'); a link gives another page's id or title",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CORPORA))
def test_bad_corpora_are_refused_naming_the_file_and_row(case: str, tmp_path: Path) -> None:
    text, message = BAD_CORPORA[case]
    (tmp_path / "bad.jsonl").write_text(text)
    with pytest.raises(CorpusError) as error:
        read_wiki_corpus(tmp_path / "bad.jsonl")
    assert message.format(dir=tmp_path) in str(error.value)


def test_a_missing_corpus_is_refused_by_the_reader_and_the_level(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"nope\.jsonl: corpus not found \(give a \.jsonl"):
        read_wiki_corpus(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match=r"corpus .*nope\.jsonl: no such file or folder"):
        SearchLevel(corpus=tmp_path / "nope.jsonl")


def test_a_corpus_that_gives_no_question_is_refused(tmp_path: Path) -> None:
    """Each page links to both others, all with the same words: no word picks one link out,
    so no hop can be asked."""
    rows = [
        {"id": f"p{i}", "title": f"Page {i}", "text": "Common words.", "links": ["p0", "p1", "p2"]}
        for i in range(3)
    ]
    (tmp_path / "same.jsonl").write_text(_rows(*rows))
    level = SearchLevel(corpus=tmp_path / "same.jsonl", hops=(1, 2))
    with pytest.raises(CorpusError, match=r"same\.jsonl: no 1-hop question found in 500 walks"):
        SPEC.open_world(level, 0, tmp_path / "world")


# ---- chain questions ---------------------------------------------------------------------------


def open_world(corpus: Path, tmp_path: Path, **level: Any):  # type: ignore[no-untyped-def]
    return SPEC.open_world(SearchLevel(corpus=corpus, **level), 0, tmp_path / "world")


def assert_well_posed(task: Task, pages: CorpusPages) -> None:
    """Every rule of chains.py, checked from the pages themselves."""
    walk, cues = task.provenance.extra["walk"], task.metadata["cues"]
    assert walk == task.evidence and len(cues) == task.metadata["hops"] == len(walk) - 1
    assert task.answer == pages.title(walk[-1])
    chain_titles = set().union(*(tokenize([pages.title(p)])[0] for p in walk))
    for (page, target), cue in zip(pairwise(walk), cues, strict=True):
        links = pages.documents[page].links
        assert target in links[:30]
        assert cue in tokenize([pages.documents[target].text[:CUE_CHARS]])[0]
        assert [t for t in links if cue in pages.words[t]] == [target]  # one link fits
        assert 2 <= pages.doc_freq[cue] <= MAX_K and cue not in chain_titles
        assert f'mentions "{cue}"' in task.instruction
    for page in walk[1:]:
        assert pages.title(page) not in task.instruction
    start = task.metadata["start"]
    if task.metadata["start_named"]:
        assert start == pages.title(walk[0]) and f'"{start}"' in task.instruction
    else:
        assert [p for p, words in pages.words.items() if start in words] == [walk[0]]


def test_chain_questions_follow_the_corpus_links_and_are_well_posed(
    corpus: Path, tmp_path: Path
) -> None:
    world = open_world(corpus, tmp_path, hops=(1, 3))
    assert dict(world.info) == {
        "corpus": str(corpus),
        "pages": 40,
        "links": 160,
        "dangling_links": 4,
    }
    pages = world.proposer.pages
    links = source_links(corpus)
    rng = random.Random(0)
    tasks = [t for t in (world.proposer.propose(rng) for _ in range(40)) if t is not None]
    assert len(tasks) == 40
    for task in tasks:
        walk = task.provenance.extra["walk"]
        assert all(b in links[a] for a, b in pairwise(walk))
        assert not heldout_start(walk[0])
        assert_well_posed(task, pages)
    assert {t.metadata["hops"] for t in tasks} == {1, 2, 3}
    assert {t.metadata["start_named"] for t in tasks} == {True, False}
    # The corpus the tools serve is the corpus's pages, links given as ids.
    served = CorpusIndex.open(tmp_path / "world" / "corpus" / "corpus.jsonl").corpus
    assert [d.links for d in served] == [d.links for d in read_wiki_corpus(corpus).documents]


def test_the_held_out_split_starts_where_synthesis_never_does(corpus: Path, tmp_path: Path) -> None:
    world = open_world(corpus, tmp_path, hops=(1, 2))
    held = world.heldout(12, HELDOUT_SEED)
    assert [t.id for t in world.heldout(6, HELDOUT_SEED)] == [t.id for t in held[:6]]
    assert [t.metadata["hops"] for t in held] == [1, 2] * 6  # round the levels
    rng = random.Random(0)
    synthesis = [t for t in (world.proposer.propose(rng) for _ in range(200)) if t is not None]
    assert all(heldout_start(t.evidence[0]) for t in held)
    assert not any(heldout_start(t.evidence[0]) for t in synthesis)
    assert {t.id for t in held}.isdisjoint(t.id for t in synthesis)
    for task in held:
        assert_well_posed(task, world.proposer.pages)


def test_the_kag_holds_the_corpus_graph_and_the_proposer_walks_it(
    corpus: Path, tmp_path: Path
) -> None:
    world = open_world(corpus, tmp_path, hops=(1, 2))
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        world.load_kag(kag)
        stored = LinkGraph.from_kag(kag, "search")
    source = load_wiki_corpus(corpus)
    assert list(stored.titles.items()) == list(source.titles.items())
    assert stored.links == source.links and stored.relations == {}  # real links: no labels
    assert world.proposer.graph is not None and world.proposer.graph.links == source.links


# ---- the expert and the verifier ---------------------------------------------------------------


def run_expert(
    tasks: list[Task], world: Any, renderer: ChatRenderer, tmp_path: Path, error_rate: float
) -> list[Trajectory]:
    async def run_all() -> list[Trajectory]:
        out = []
        for task in tasks:
            runner = EpisodeRunner(
                ScriptedAgent(renderer, ChainExpert(task, error_rate=error_rate)),
                lambda t: build_toolset(t.protocol.tools),
                HarnessConfig(workdir=tmp_path / "work"),
                verify=verify_search,
                resources=dict(world.resources),
            )
            out.append(await runner.run(task, task.id))
        return out

    return asyncio.run(run_all())


def test_the_expert_solves_with_search_and_visit_and_the_verifier_is_exact(
    corpus: Path, renderer: ChatRenderer, tmp_path: Path
) -> None:
    world = open_world(corpus, tmp_path, hops=(1, 3))
    tasks = world.heldout(6, HELDOUT_SEED)
    for task, traj in zip(tasks, run_expert(tasks, world, renderer, tmp_path, 0.0), strict=True):
        assert traj.status is Status.COMPLETED and traj.passed, traj.status_reason
        calls = [s.action.function.name for s in traj.steps]
        assert calls == ["search", "visit"] * (task.metadata["hops"] + 1)
        assert traj.final_answer == task.answer
        # The right answer with the path passes; another page's title, or no path, fails.
        assert [v.passed for v in verify_search(task, task.answer, task.evidence)] == [True] * 2
        other = world.proposer.pages.title(task.evidence[0])
        assert [v.passed for v in verify_search(task, other, task.evidence)] == [False, True]
        assert [v.passed for v in verify_search(task, task.answer, [])] == [True, False]
    wrong = run_expert(tasks, world, renderer, tmp_path, 1.0)  # every episode errs once
    assert all(t.status is Status.COMPLETED and not t.passed for t in wrong)


# ---- synthesis and the CLI ---------------------------------------------------------------------


def synthesize(level: SearchLevel, out: Path, renderer: ChatRenderer, n: int):  # type: ignore[no-untyped-def]
    with KnowledgeActionGraph(out / "kag.db") as kag:
        domain = domain_builder(SPEC, level, 0, out)(kag, renderer, None)
        config = SynthConfig(n=n, out=out, seed=0, concurrency=4)
        report = asyncio.run(SelfPlay(domain, config, kag).run(show_progress=False))
        accepted = [task for task, _, _ in kag.tasks("search", TaskStatus.ACCEPTED)]
    return report, accepted


def test_synthesis_accepts_chains_over_a_generated_corpus(
    corpus: Path, renderer: ChatRenderer, tmp_path: Path
) -> None:
    level = SearchLevel(corpus=corpus, hops=(1, 3), expert_error_rate=0.3)
    report, accepted = synthesize(level, tmp_path / "synth", renderer, n=10)
    assert (report.accepted, report.proposed) == (10, 16)
    # The erring expert's episodes: a wrong answer (invalid), a page it did not read
    # (uncovered), an answer before enough tool steps (uninformative); a task may have several.
    assert dict(report.rejected) == {"invalid": 6, "uncovered": 2, "uninformative": 2}
    links = source_links(corpus)
    for task in accepted:
        assert all(b in links[a] for a, b in pairwise(task.evidence))
    stored = list(TaskStore(tmp_path / "synth" / "tasks"))
    assert sorted(t.id for t in stored) == sorted(t.id for t in accepted)


def test_synth_cli_takes_the_corpus_as_a_level(corpus: Path, tmp_path: Path) -> None:
    level = json.dumps({"corpus": str(corpus), "hops": [1, 2]})
    args = ["synth", "--domain", "search", "--n", "4", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, [*args, "--level", level])
    assert result.exit_code == 0, result.output
    assert "4 / 4" in result.output
    assert (tmp_path / "out" / "corpus" / "corpus.jsonl").is_file()
    (tmp_path / "bad.jsonl").write_text(_rows({"id": "a", "text": "x"}))
    bad = json.dumps({"corpus": str(tmp_path / "bad.jsonl")})
    refused = CliRunner().invoke(app, [*args, "--level", bad])
    assert refused.exit_code == 2 and "bad.jsonl:1: missing required field 'title'" in (
        refused.output
    )


# ---- the real-text corpus: numpy's and sympy's docstrings --------------------------------------

# What numpy 2.4.6 and sympy 1.14.0 give; other versions give other pages, so the exact
# counts are checked only for these.
VERSIONS = ("2.4.6", "1.14.0")
PAGES, LINKS = 2969, 4252


@pytest.fixture(scope="module")
def pydoc_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built by the script, in a fresh process, as a user would."""
    out = tmp_path_factory.mktemp("pydoc") / "pydoc.jsonl"
    script = ROOT / "scripts" / "build_pydoc_corpus.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{out}: ")
    return out


def exact_versions() -> bool:
    return (version("numpy"), version("sympy")) == VERSIONS


def test_the_docstring_corpus_is_real_linked_text(pydoc_corpus: Path) -> None:
    wiki = read_wiki_corpus(pydoc_corpus)
    by_id = {d.id: d for d in wiki.documents}
    assert wiki.dangling == 0  # the builder keeps only links it resolved
    total = by_id["numpy.sum"]
    assert total.title == "numpy.sum" and "See Also" in total.text
    assert total.links == [
        "numpy.ndarray.sum",
        "numpy.add",
        "numpy.cumsum",
        "numpy.trapezoid",
        "numpy.mean",
        "numpy.average",
    ]
    assert "sympy.divisors" in by_id["sympy.factorint"].links
    assert all(len(d.text) >= 200 for d in wiki.documents)
    if exact_versions():
        assert (len(wiki.documents), wiki.n_links) == (PAGES, LINKS)


def test_synthesis_on_the_docstring_corpus(
    pydoc_corpus: Path, renderer: ChatRenderer, tmp_path: Path
) -> None:
    level = SearchLevel(corpus=pydoc_corpus, hops=(1, 3))
    report, accepted = synthesize(level, tmp_path / "synth", renderer, n=20)
    assert report.accepted == len(accepted) == 20
    world = SPEC.open_world(level, 0, tmp_path / "synth")
    pages = world.proposer.pages
    for task in accepted:
        assert_well_posed(task, pages)
    if exact_versions():
        assert report.proposed == 24 and dict(report.rejected) == {"invalid": 1}
        example = min(accepted, key=lambda t: t.id)
        assert (example.id, example.answer) == ("search-0698d684d045", "numpy.ceil")
        assert example.evidence == ["numpy.rint", "numpy.ceil"]
        assert example.instruction == (
            'Start at the page titled "numpy.rint". It links to exactly one page that mentions '
            '"ceiling"; go there. What is the title of the page you reach? (A page mentions a '
            "word when its title or text contains it as a whole word.)"
        )
