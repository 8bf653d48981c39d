"""Knowledge tools: corpus loading, the cached BM25 index, search / visit / notes, catalog, CLI."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.tools.base import TRUNCATION_MARKER, ToolSet
from longhorizon.tools.catalog import TOOLS, UnknownToolError, build_toolset
from longhorizon.tools.corpus import Corpus, CorpusError, CorpusIndex
from longhorizon.tools.knowledge import (
    parse_serper_response,
    read_notes,
    search,
    visit,
    web_search,
    write_notes,
)
from longhorizon.tools.types import ToolContext, ToolResult

ROWS: list[dict[str, Any]] = [
    {
        "id": "paris",
        "title": "Paris",
        "text": "Paris is the capital and largest city of France, on the river Seine.",
        "links": ["france", "seine"],
    },
    {"id": "berlin", "title": "Berlin", "text": "Berlin is the capital of Germany."},
    {"id": "seine", "title": "Seine", "text": "The Seine is a river that flows through Paris."},
    {"id": "volcano", "title": "Volcanoes", "text": "A volcano erupts lava, ash and gases."},
    {"id": "lisbon", "title": "Lisbon", "text": "Lisbon lies on the Tagus estuary in Portugal."},
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def corpus_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "wiki.jsonl", ROWS)


@pytest.fixture
def index(corpus_file: Path) -> CorpusIndex:
    return CorpusIndex.open(corpus_file)


def call(name: str, ctx: ToolContext, toolset: ToolSet | None = None, **args: Any) -> ToolResult:
    toolset = toolset or build_toolset([name])
    tool_call = ToolCall(id="c1", function=FunctionCall(name=name, arguments=json.dumps(args)))
    return asyncio.run(toolset.execute(tool_call, ctx))


def context(tmp_path: Path, **resources: Any) -> ToolContext:
    return ToolContext(episode_id="e1", workdir=tmp_path, resources=resources)


# ---- corpus and index ------------------------------------------------------------------------


def test_jsonl_and_parquet_load_the_same_documents(tmp_path: Path, corpus_file: Path) -> None:
    table = pa.Table.from_pylist([{**r, "links": r.get("links", [])} for r in ROWS])
    pq.write_table(table, tmp_path / "wiki.parquet")
    from_jsonl = Corpus.load(corpus_file)
    from_parquet = Corpus.load(tmp_path / "wiki.parquet")
    assert [d.id for d in from_parquet] == ["paris", "berlin", "seine", "volcano", "lisbon"]
    assert from_parquet.documents == from_jsonl.documents
    assert from_jsonl.get("paris").links == ["france", "seine"]
    assert from_jsonl.get("berlin").links == []
    parquet_index = CorpusIndex.open(tmp_path / "wiki.parquet")
    assert parquet_index.search("volcano lava", 1)[0][0].id == "volcano"


def test_bm25_top_hit_and_no_hit(index: CorpusIndex) -> None:
    hits = index.search("capital of Germany", 3)
    assert [d.id for d, _ in hits] == ["berlin", "paris"]
    assert hits[0][1] > hits[1][1] > 0
    assert [d.id for d, _ in index.search("river Seine", 5)] == ["seine", "paris"]
    assert index.search("zeppelin", 5) == []


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"id": "a", "text": "x"}', '{"title": "t", "text": "y"}'],
            "wiki.jsonl:2: missing required field 'id'",
        ),
        (['{"id": "a", "title": "no text"}'], "wiki.jsonl:1: missing required field 'text'"),
        (
            ['{"id": "a", "text": "x"}', "", '{"id": "a", "text": "y"}'],
            "wiki.jsonl:3: duplicate id 'a' (first at {path}:1)",
        ),
        (['{"id": "a", "text": "x"', ""], "wiki.jsonl:1: invalid JSON"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "wiki.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorpusError) as exc:
        Corpus.load(path)
    assert str(exc.value).startswith(f"{tmp_path}/" + message.format(path=path))


def test_bad_parquet_row_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.Table.from_pylist([{"id": "a", "text": "x"}, {"id": "b", "text": None}]), path
    )
    with pytest.raises(CorpusError, match=r"bad\.parquet: row 2: missing required field 'text'"):
        Corpus.load(path)


def test_index_cache_is_reused_and_rebuilt_on_change(tmp_path: Path, corpus_file: Path) -> None:
    first = CorpusIndex.open(corpus_file)
    assert not first.from_cache
    assert first.cache_path is not None and first.cache_path.parent == tmp_path / ".wiki.jsonl.bm25"
    mtime = (first.cache_path / "meta.json").stat().st_mtime_ns
    second = CorpusIndex.open(corpus_file)
    assert second.from_cache and second.cache_path == first.cache_path
    assert (second.cache_path / "meta.json").stat().st_mtime_ns == mtime
    assert [d.id for d, _ in second.search("capital of Germany", 1)] == ["berlin"]

    write_jsonl(
        corpus_file, [*ROWS, {"id": "zeppelin", "title": "Zeppelin", "text": "An airship."}]
    )
    third = CorpusIndex.open(corpus_file)
    assert not third.from_cache and third.cache_path != first.cache_path
    assert [d.id for d, _ in third.search("zeppelin airship", 5)] == ["zeppelin"]
    # the stale entry is pruned from the corpus's private cache root; no temp dirs remain
    assert os.listdir(tmp_path / ".wiki.jsonl.bm25") == [third.cache_path.name]


def test_explicit_cache_dir(tmp_path: Path, corpus_file: Path) -> None:
    first = CorpusIndex.open(corpus_file, cache_dir=tmp_path / "cache")
    again = CorpusIndex.open(corpus_file, cache_dir=tmp_path / "cache")
    assert first.cache_path.parent == tmp_path / "cache"
    assert (not first.from_cache, again.from_cache) == (True, True)
    assert not (tmp_path / ".wiki.jsonl.bm25").exists()


# ---- search ------------------------------------------------------------------------------------


def test_search_tool_output_and_refs(tmp_path: Path, index: CorpusIndex) -> None:
    result = call("search", context(tmp_path, corpus_index=index), query="capital Germany", k=1)
    assert result.ok
    assert result.content == (
        'Results for "capital Germany":\n'
        f"1. [berlin] Berlin (score {index.search('capital Germany', 1)[0][1]:.2f})\n"
        "   Berlin is the capital of Germany."
    )
    assert result.refs == ["berlin"]


def test_multi_query_search_groups_results(tmp_path: Path, index: CorpusIndex) -> None:
    queries = ["volcano lava", "Tagus Portugal", "zeppelin"]
    result = call("search", context(tmp_path, corpus_index=index), query=queries, k=2)
    blocks = result.content.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [
        'Results for "volcano lava":',
        'Results for "Tagus Portugal":',
        'No results for "zeppelin".',
    ]
    assert "[volcano] Volcanoes" in blocks[0] and "[lisbon] Lisbon" in blocks[1]
    assert result.refs == ["volcano", "lisbon"]


def test_search_without_corpus_or_query_is_an_error(tmp_path: Path, index: CorpusIndex) -> None:
    assert call("search", context(tmp_path), query="x").error == (
        "no document collection is configured for search"
    )
    empty = call("search", context(tmp_path, corpus_index=index), query=["  "])
    assert empty.content == "Error: empty query; give keywords to search for"


# ---- visit -------------------------------------------------------------------------------------


def test_visit_returns_page_with_links(tmp_path: Path, index: CorpusIndex) -> None:
    result = call("visit", context(tmp_path, corpus_index=index), id="paris")
    assert result.content == ("Document [paris]: Paris\nLinks: france, seine\n\n" + ROWS[0]["text"])
    assert result.refs == ["paris"] and result.ok


def test_visit_truncates_to_budget(tmp_path: Path) -> None:
    long_text = " ".join(f"word{i}" for i in range(400))
    write_jsonl(tmp_path / "long.jsonl", [{"id": "long", "title": "Long", "text": long_text}])
    ctx = context(tmp_path, corpus_index=CorpusIndex.open(tmp_path / "long.jsonl"))
    ctx.resources["visit_max_tokens"] = 10  # 40 characters with the default truncator
    result = call("visit", ctx, id="long")
    dropped, total = (len(long_text) - 40) // 4, len(long_text) // 4
    marker = TRUNCATION_MARKER.format(dropped=dropped, total=total)
    assert result.content == f"Document [long]: Long\n\n{long_text[:40]}{marker}"


def test_visit_unknown_id_and_url(tmp_path: Path, index: CorpusIndex) -> None:
    ctx = context(tmp_path, corpus_index=index)
    unknown = call("visit", ctx, id="berlim")
    assert unknown.error == (
        "no document with id 'berlim'. Did you mean: berlin? Use search to find document ids."
    )
    url = call("visit", ctx, id="https://example.org/page")
    assert not url.ok and "network access is not configured" in url.content


def test_visit_with_goal_and_summariser(
    tmp_path: Path, index: CorpusIndex, tiny_backend: Any
) -> None:
    from longhorizon.core.sampling import SamplingParams

    ctx = context(
        tmp_path,
        corpus_index=index,
        summariser=tiny_backend,
        summariser_params=SamplingParams(temperature=0.0, max_tokens=8),
    )
    result = call("visit", ctx, id="paris", goal="Which river flows through Paris?")
    assert result.ok, result.content
    assert result.content.startswith(
        "Document [paris]: Paris\nGoal: Which river flows through Paris?\n\nEvidence:\n- Paris is"
    )
    assert "\n\nSummary:\n" in result.content and result.refs == ["paris"]
    assert "summariser failed" not in result.content


# ---- notes and web search ----------------------------------------------------------------------


def test_notes_round_trip_in_state(tmp_path: Path) -> None:
    toolset = ToolSet([write_notes, read_notes])
    ctx = context(tmp_path)
    assert call("read_notes", ctx, toolset).content == "No notes yet."
    assert call("write_notes", ctx, toolset, text="Paris is on the Seine").content == (
        "Saved note 1 (1 in total)."
    )
    call("write_notes", ctx, toolset, text="check Lisbon")
    assert ctx.state["notes"] == ["Paris is on the Seine", "check Lisbon"]
    assert call("read_notes", ctx, toolset).content == "1. Paris is on the Seine\n2. check Lisbon"


def test_web_search_without_key_and_response_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERPER_API_KEY", raising=False)
    result = call("web_search", context(tmp_path), query="x")
    assert not result.ok and "SERPER_API_KEY" in result.error and "network" in result.error
    assert "NEEDS NETWORK" in web_search.description
    data = {
        "organic": [
            {"title": "A", "link": "https://a.example", "snippet": "about a"},
            {"title": "no link"},
            {"title": "B", "link": "https://b.example"},
            {"title": "C", "link": "https://c.example"},
        ]
    }
    hits = parse_serper_response(data, 2)
    assert [(h.title, h.link, h.snippet) for h in hits] == [
        ("A", "https://a.example", "about a"),
        ("B", "https://b.example", ""),
    ]
    assert parse_serper_response({}, 5) == []


def _closed_port() -> int:
    """A local port nothing listens on: connecting is refused, as with no network."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_web_tools_say_when_the_network_cannot_be_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    url = f"http://127.0.0.1:{_closed_port()}/search"
    monkeypatch.setenv("SERPER_API_KEY", "a-key")
    monkeypatch.setenv("SERPER_URL", url)
    result = call("web_search", context(tmp_path), query="x")
    assert result.error is not None
    assert result.error.startswith(f"web_search could not reach {url}: no network access (")
    assert result.error.endswith("); use search over the local documents instead")

    async def fetch(page: str) -> str:  # a real web adapter: httpx, against the closed port
        async with httpx.AsyncClient(timeout=5.0) as client:
            return (await client.get(page)).text

    opened = call("visit", context(tmp_path, web_fetch=fetch), id=url)
    assert opened.error is not None
    assert opened.error.startswith(f"cannot open {url}: the network could not be reached (")


# ---- catalog and CLI ---------------------------------------------------------------------------


def test_catalog_names_and_unknown_tool() -> None:
    assert list(TOOLS) == [
        "calculator",
        "search",
        "visit",
        "python",
        "write_notes",
        "read_notes",
        "web_search",
        # molecules (tools/chem.py)
        "canonicalize",
        "descriptors",
        "substructure",
        "similarity",
        "rule_filter",
        "affinity_proxy",
        # ML engineering: the solution tree (tools/mle/harness.py)
        "write_full_code",
        "patch_code",
        "execute_code",
        "list_nodes",
        "select_node",
        "invalidate_node",
        "update_answer",
        "get_current_answer",
        # tool calling: the simulated user and the two worlds (tools/worlds.py)
        "ask_user",
        "find_user",
        "list_orders",
        "get_order",
        "cancel_order",
        "update_address",
        "find_flights",
        "list_bookings",
        "get_booking",
        "book_flight",
        "cancel_booking",
    ]
    assert TOOLS["search"] is search and TOOLS["visit"] is visit
    toolset = build_toolset(["search", "visit", "search", "read_notes"])
    assert [s.name for s in toolset.specs()] == ["search", "visit", "read_notes"]
    with pytest.raises(UnknownToolError) as exc:
        build_toolset(["search", "browse"])
    assert str(exc.value) == "unknown tool(s) 'browse'; known tools: " + ", ".join(TOOLS)


def test_cli_run_search_and_bad_json(corpus_file: Path) -> None:
    runner = CliRunner()
    args = ["tools", "run", "search", "--corpus", str(corpus_file)]
    ok = runner.invoke(app, [*args, "--args", '{"query": "capital of Germany", "k": 1}'])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith('Results for "capital of Germany":\n1. [berlin] Berlin (score ')
    assert "\n---\nerror: no\nduration: " in ok.output and "refs: berlin\n" in ok.output
    bad = runner.invoke(app, [*args, "--args", '{"query": '])
    assert bad.exit_code == 2 and "not valid JSON" in bad.output
    listed = runner.invoke(app, ["tools", "list"])
    assert listed.exit_code == 0 and "write_notes" in listed.output
