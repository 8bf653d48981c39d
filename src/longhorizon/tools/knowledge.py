"""Knowledge tools: search and read a local corpus, keep notes, and (optionally) search the web.

What the tools read from the ToolContext:

- `resources["corpus_index"]`: a `CorpusIndex` (search, visit).
- `resources["summariser"]`: any `Backend`; with a goal, visit answers it over the page.
- `resources["summariser_params"]`: `SamplingParams` for the summariser (default: greedy, 512).
- `resources["visit_max_tokens"]`: page budget of visit (default `VISIT_MAX_TOKENS`).
- `resources["truncate"]`: a `Truncator` (e.g. `tokenizer_truncator(tok)`) for that budget.
- `resources["web_fetch"]`: async `url -> text`; without it visit refuses URLs (no network).
- `state["notes"]`: the episode's notes (ctx outlives context compaction, so notes do too).

Only `web_search` and a configured `web_fetch` touch the network; everything else is offline.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from longhorizon.core.messages import Message
from longhorizon.core.sampling import SamplingParams
from longhorizon.tools.base import Truncator, tool, truncate_chars
from longhorizon.tools.corpus import CorpusIndex, Document, rank_texts, tokenize
from longhorizon.tools.types import ToolContext, ToolResult

MAX_K = 20
MAX_QUERIES = 8
SNIPPET_CHARS = 240
VISIT_MAX_TOKENS = 1500
EVIDENCE_PASSAGES = 3
PASSAGE_CHARS = 600
SUMMARY_MAX_TOKENS = 512
VISIBLE_LINKS = 30  # links a visit lists: a wiki page can have hundreds
SERPER_URL = "https://google.serper.dev/search"
SERPER_KEY_ENV = "SERPER_API_KEY"

WebFetch = Callable[[str], Awaitable[str]]


def _fail(message: str) -> ToolResult:
    """An error observation (the same shape ToolSet produces for its own failures)."""
    return ToolResult(content=f"Error: {message}", error=message)


def _corpus_index(ctx: ToolContext) -> CorpusIndex | None:
    return ctx.resources.get("corpus_index")


# ---- search ------------------------------------------------------------------------------------


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """A one-line window of `text` around the first query word it contains (else its start)."""
    flat = " ".join(text.split())
    lower = flat.lower()
    positions = [m.start() for t in tokenize([query])[0] if (m := re.search(re.escape(t), lower))]
    start = max(0, min(positions) - width // 4) if positions else 0
    end = min(len(flat), start + width)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(flat) else ""
    return prefix + flat[start:end].strip() + suffix


def _format_hits(query: str, hits: list[tuple[Document, float]]) -> str:
    if not hits:
        return f'No results for "{query}".'
    lines = [f'Results for "{query}":']
    for rank, (doc, score) in enumerate(hits, start=1):
        lines.append(f"{rank}. [{doc.id}] {doc.title or '(untitled)'} (score {score:.2f})")
        lines.append(f"   {snippet(doc.text, query)}")
    return "\n".join(lines)


@tool(timeout_s=30.0)
def search(query: str | list[str], ctx: ToolContext, k: int = 5) -> ToolResult:
    """Search the document collection with BM25 keyword matching.

    Returns, per query, the best documents with id, title and a snippet. Use the id with
    visit to read a document. Several queries may be given at once as a list.

    Args:
        query: keywords to search for, or a list of several queries
        k: number of results per query (1 to 20)
    """
    index = _corpus_index(ctx)
    if index is None:
        return _fail("no document collection is configured for search")
    queries = [query] if isinstance(query, str) else list(query)
    queries = [q.strip() for q in queries if q.strip()]
    if not queries:
        return _fail("empty query; give keywords to search for")
    if len(queries) > MAX_QUERIES:
        return _fail(f"too many queries ({len(queries)}); give at most {MAX_QUERIES}")
    k = max(1, min(k, MAX_K))  # clamped, not refused: a too-large k is not worth a failed turn
    blocks: list[str] = []
    refs: list[str] = []
    for q in queries:
        hits = index.search(q, k)
        blocks.append(_format_hits(q, hits))
        refs.extend(doc.id for doc, _ in hits if doc.id not in refs)
    return ToolResult(content="\n\n".join(blocks), refs=refs)


# ---- visit -------------------------------------------------------------------------------------


def passages(text: str, size: int = PASSAGE_CHARS) -> list[str]:
    """Paragraphs, with long ones cut at word boundaries into pieces of about `size` chars."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        words, current = para.split(), ""
        for word in words:
            if current and len(current) + 1 + len(word) > size:
                out.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        if current:
            out.append(current)
    return out


def evidence(text: str, goal: str, n: int = EVIDENCE_PASSAGES) -> list[str]:
    """The n passages most relevant to the goal (BM25), in page order; the first if none match."""
    parts = passages(text)
    ranked = rank_texts(parts, goal, n)
    if not ranked:
        return parts[:1]
    return [parts[i] for i in sorted(i for i, _ in ranked)]


def _page(doc: Document, body: str) -> str:
    header = f"Document [{doc.id}]: {doc.title or '(untitled)'}"
    links = f"\nLinks: {', '.join(doc.links[:VISIBLE_LINKS])}" if doc.links else ""
    return f"{header}{links}\n\n{body}"


async def _summarise(backend: Any, params: SamplingParams, goal: str, page: str) -> str:
    messages = [
        Message(
            role="system",
            content="You extract information from a page for a research agent. "
            "Answer the goal using only the page; say so if the page does not contain it.",
        ),
        Message(role="user", content=f"Goal: {goal}\n\nPage:\n{page}"),
    ]
    result = await backend.chat(messages, params)
    return (result.message.content or "").strip()


async def _goal_view(ctx: ToolContext, goal: str, doc: Document, body: str) -> str:
    """Evidence passages plus the summariser's answer to the goal."""
    passages_text = "\n\n".join(f"- {p}" for p in evidence(body, goal))
    default = SamplingParams(temperature=0.0, max_tokens=SUMMARY_MAX_TOKENS)
    params = ctx.resources.get("summariser_params") or default
    try:
        summary = await _summarise(ctx.resources["summariser"], params, goal, _page(doc, body))
    except Exception as exc:  # the evidence is still worth returning without a summary
        summary = f"(summariser failed: {type(exc).__name__}: {exc})"
    header = f"Document [{doc.id}]: {doc.title or '(untitled)'}\nGoal: {goal}"
    return f"{header}\n\nEvidence:\n{passages_text}\n\nSummary:\n{summary or '(empty)'}"


def _unknown_id(index: CorpusIndex, doc_id: str) -> ToolResult:
    close = difflib.get_close_matches(doc_id, list(index.corpus.by_id), n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return _fail(f"no document with id {doc_id!r}.{hint} Use search to find document ids.")


async def _visit_url(ctx: ToolContext, url: str, goal: str) -> ToolResult:
    fetch: WebFetch | None = ctx.resources.get("web_fetch")
    if fetch is None:
        return _fail(
            f"cannot open {url}: network access is not configured (no web adapter); "
            "visit takes a document id from search results"
        )
    try:
        text = await fetch(url)
    except (httpx.TransportError, OSError) as exc:  # no route, no DNS, refused: say so
        return _fail(f"cannot open {url}: the network could not be reached ({exc!r})")
    return await _visit_doc(ctx, Document(id=url, title=url, text=text), goal)


async def _visit_doc(ctx: ToolContext, doc: Document, goal: str) -> ToolResult:
    truncate: Truncator = ctx.resources.get("truncate", truncate_chars)
    body, _ = truncate(doc.text, int(ctx.resources.get("visit_max_tokens", VISIT_MAX_TOKENS)))
    if goal.strip() and ctx.resources.get("summariser") is not None:
        content = await _goal_view(ctx, goal.strip(), doc, body)
    else:
        content = _page(doc, body)
    return ToolResult(content=content, refs=[doc.id])


@tool(timeout_s=120.0, max_output_tokens=4096)
async def visit(id: str, ctx: ToolContext, goal: str = "") -> ToolResult:
    """Read a document by its id (from search results).

    With a goal, returns the passages most relevant to it and a summary answering it.

    Args:
        id: the document id shown in search results
        goal: what you want to learn from this document (optional)
    """
    doc_id = id.strip()
    if re.match(r"https?://", doc_id):
        return await _visit_url(ctx, doc_id, goal)
    index = _corpus_index(ctx)
    if index is None:
        return _fail("no document collection is configured for visit")
    doc = index.corpus.get(doc_id)
    if doc is None:
        return _unknown_id(index, doc_id)
    return await _visit_doc(ctx, doc, goal)


# ---- notes -------------------------------------------------------------------------------------


def _notes(ctx: ToolContext) -> list[str]:
    return ctx.state.setdefault("notes", [])


@tool(timeout_s=5.0)
async def write_notes(text: str, ctx: ToolContext) -> ToolResult:
    """Save a note to your episode memory; notes survive when old context is dropped.

    Args:
        text: the note to keep (facts found, sources, open questions)
    """
    if not text.strip():
        return _fail("empty note; write the text to keep")
    notes = _notes(ctx)
    notes.append(text.strip())
    return ToolResult(content=f"Saved note {len(notes)} ({len(notes)} in total).")


@tool(timeout_s=5.0)
async def read_notes(ctx: ToolContext) -> ToolResult:
    """Read all notes saved with write_notes in this episode."""
    notes = _notes(ctx)
    if not notes:
        return ToolResult(content="No notes yet.")
    return ToolResult(content="\n".join(f"{i}. {note}" for i, note in enumerate(notes, start=1)))


# ---- optional web search (network) -------------------------------------------------------------


@dataclass(frozen=True)
class WebHit:
    title: str
    link: str
    snippet: str


def parse_serper_response(data: dict[str, Any], k: int) -> list[WebHit]:
    """The first k organic results of a Serper-style JSON response."""
    hits = []
    for item in data.get("organic") or []:
        if isinstance(item, dict) and item.get("link"):
            hits.append(
                WebHit(str(item.get("title", "")), str(item["link"]), str(item.get("snippet", "")))
            )
    return hits[:k]


def format_web_hits(query: str, hits: list[WebHit]) -> str:
    if not hits:
        return f'[live web results, fetched over the network] No results for "{query}".'
    lines = [f'[live web results, fetched over the network] Results for "{query}":']
    for rank, hit in enumerate(hits, start=1):
        lines.append(f"{rank}. {hit.title}\n   {hit.link}\n   {hit.snippet}")
    return "\n".join(lines)


@tool(timeout_s=30.0)
async def web_search(query: str, k: int = 5) -> ToolResult:
    """Search the live web (NEEDS NETWORK ACCESS and a SERPER_API_KEY; optional adapter).

    Sends the query to a Serper-compatible API (https://google.serper.dev/search) and returns
    titles, links and snippets. Not available in offline runs.

    Args:
        query: the web search query
        k: number of results (1 to 20)
    """
    key = os.environ.get(SERPER_KEY_ENV, "").strip()
    if not key:
        return _fail(
            f"web_search needs network access and the {SERPER_KEY_ENV} environment variable, "
            "which is not set; use search over the local documents instead"
        )
    k = max(1, min(k, MAX_K))
    url = os.environ.get("SERPER_URL", SERPER_URL)
    try:
        async with httpx.AsyncClient(timeout=20.0) as client:
            response = await client.post(
                url,
                headers={"X-API-KEY": key, "Content-Type": "application/json"},
                json={"q": query, "num": k},
            )
    except httpx.TransportError as exc:  # no route, no DNS, refused, timed out: say so
        return _fail(
            f"web_search could not reach {url}: no network access ({exc!r}); use search over "
            "the local documents instead"
        )
    if response.status_code != 200:
        return _fail(f"web search API returned HTTP {response.status_code}: {response.text[:200]}")
    hits = parse_serper_response(response.json(), k)
    return ToolResult(content=format_web_hits(query, hits), refs=[h.link for h in hits])
