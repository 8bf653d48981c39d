"""A user's wiki corpus: pages with an id, a title, text and links, checked, with every link
made the id of a page.

Two formats (README, "Real corpora"):

- rows `{"id", "title", "text", "links"}` in `.jsonl` (one JSON object a line) or `.parquet`
  files; `links` name other pages by id or by title (any case);
- a folder of documents: every `.md`, `.markdown` and `.txt` file under it (hidden folders
  skipped). A document's id is its path relative to the folder without the suffix
  (`guides/setup`), its title the first line when that is a `# heading` (else the file name),
  and its links the `[[Target]]` / `[[Target|shown text]]` wiki links (a title or id) and the
  Markdown links `[text](other.md)` to files of the folder; web links are not pages.

A link that names no page (a red link) is dropped and counted in `dangling`. Errors, each
naming the file and row: a missing file or folder, a row without id, title or text, two pages
with one id or one title (a title is what a question asks for), an id with a comma (the visit
tool lists links comma-separated), and a corpus in which no link names a page (nothing to
walk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from longhorizon.tools.corpus import CorpusError, Document, read_documents

__all__ = ["DOCUMENT_SUFFIXES", "WikiCorpus", "read_wiki_corpus", "write_documents"]

DOCUMENT_SUFFIXES = (".md", ".markdown", ".txt")
_WIKI_LINK = re.compile(r"\[\[([^\]|#]+)(?:#[^\]|]*)?(?:\|[^\]]*)?\]\]")
_MARKDOWN_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class WikiCorpus:
    """Pages in source order; each page's links are ids of other pages, in order, once each."""

    documents: list[Document]
    where: dict[str, str]  # id -> the file (and line) it was read from
    sources: list[Path]
    dangling: int  # links that named no page, dropped

    @property
    def n_links(self) -> int:
        return sum(len(d.links) for d in self.documents)

    def write(self, path: str | Path) -> Path:
        """The pages as a JSONL corpus, what the search and visit tools read."""
        return write_documents(path, self.documents)


def write_documents(path: str | Path, documents: Sequence[Document]) -> Path:
    """Documents as JSONL rows `{id, title, text, links}`, one a line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for doc in documents:
            f.write(json.dumps(doc.model_dump(), ensure_ascii=False) + "\n")
    return path


def read_wiki_corpus(paths: str | Path | Sequence[str | Path]) -> WikiCorpus:
    """Read JSONL / Parquet files or folders of documents, check them, resolve the links."""
    sources = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    if not sources:
        raise CorpusError("no wiki corpus given")
    rows: list[tuple[str, Document]] = []
    for source in sources:
        if not source.exists():
            raise CorpusError(
                f"{source}: corpus not found (give a .jsonl or .parquet file, or a folder of "
                f"{', '.join(DOCUMENT_SUFFIXES)} documents)"
            )
        rows.extend(_folder_documents(source) if source.is_dir() else read_documents(source))
    return _resolve(rows, sources)


# ---- a folder of documents ---------------------------------------------------------------------


def _folder_documents(root: Path) -> Iterator[tuple[str, Document]]:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in DOCUMENT_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise CorpusError(f"{root}: no {', '.join(DOCUMENT_SUFFIXES)} documents in this folder")
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"{path}: not UTF-8 text ({exc.reason})") from None
        title, body = _title_and_body(text, path.stem)
        links = [m.strip() for m in _WIKI_LINK.findall(text)]
        links += [
            t for t in (_link_target(root, path, m) for m in _MARKDOWN_LINK.findall(text)) if t
        ]
        doc_id = path.relative_to(root).with_suffix("").as_posix()
        yield str(path), Document(id=doc_id, title=title, text=body, links=links)


def _title_and_body(text: str, stem: str) -> tuple[str, str]:
    first, _, rest = text.lstrip("\ufeff").partition("\n")
    heading = _HEADING.match(first.strip())
    if heading:
        return heading.group(1).strip(), rest.strip()
    return stem, text.strip()


def _link_target(root: Path, page: Path, target: str) -> str | None:
    """The id of the document a Markdown link points to, or None for a web link, an anchor on
    the same page, or a path outside the folder."""
    if _SCHEME.match(target) or target.startswith("#"):
        return None
    relative = unquote(target.split("#", 1)[0])
    resolved = (page.parent / relative).resolve()
    try:
        inside = resolved.relative_to(root.resolve())
    except ValueError:
        return None
    if inside.suffix.lower() in DOCUMENT_SUFFIXES:
        inside = inside.with_suffix("")
    return inside.as_posix()


# ---- checks and links --------------------------------------------------------------------------


def _check(rows: list[tuple[str, Document]]) -> dict[str, str]:
    """id -> where, after the per-row checks; a title may name one page only."""
    where: dict[str, str] = {}
    titles: dict[str, str] = {}
    for at, doc in rows:
        if not doc.title.strip():
            raise CorpusError(
                f"{at}: missing required field 'title' (a wiki page needs one: questions ask "
                "for titles)"
            )
        if "," in doc.id or "\n" in doc.id:
            raise CorpusError(
                f"{at}: id {doc.id!r} has a comma or line break (visit lists links by id, "
                "comma-separated)"
            )
        if doc.id in where:
            raise CorpusError(f"{at}: duplicate id {doc.id!r} (first at {where[doc.id]})")
        if doc.title in titles:
            raise CorpusError(f"{at}: duplicate title {doc.title!r} (first at {titles[doc.title]})")
        where[doc.id], titles[doc.title] = at, at
    return where


def _title_index(rows: list[tuple[str, Document]]) -> dict[str, str]:
    """Title -> id, exact, and in lower case where that names one page only."""
    lower: dict[str, list[str]] = {}
    for _, doc in rows:
        lower.setdefault(doc.title.lower(), []).append(doc.id)
    index = {key: ids[0] for key, ids in lower.items() if len(ids) == 1}
    return index | {doc.title: doc.id for _, doc in rows}


def _resolve(rows: list[tuple[str, Document]], sources: list[Path]) -> WikiCorpus:
    where = _check(rows)
    by_title = _title_index(rows)
    documents: list[Document] = []
    dangling = 0
    first_dangling: tuple[str, str] | None = None
    for at, doc in rows:
        links: list[str] = []
        for link in doc.links:
            target = link if link in where else by_title.get(link, by_title.get(link.lower()))
            if target is None:
                dangling += 1
                first_dangling = first_dangling or (at, link)
            elif target != doc.id and target not in links:
                links.append(target)
        documents.append(doc.model_copy(update={"links": links}))
    if not any(d.links for d in documents):
        names = ", ".join(map(str, sources))
        example = (
            f", the first at {first_dangling[0]}: {first_dangling[1]!r}" if first_dangling else ""
        )
        raise CorpusError(
            f"{names}: no link names another page of the corpus ({dangling} name no "
            f"page{example}); a link gives another page's id or title"
        )
    return WikiCorpus(documents, where, sources, dangling)
