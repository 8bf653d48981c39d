"""A local document corpus and its BM25 index, the offline stand-in for web search.

A corpus is one or more JSONL or Parquet files of rows `{id, title, text, links?}`. The BM25
index (bm25s) over title + text is built once and cached on disk under a key that hashes the
corpus bytes, so editing the corpus rebuilds it and reopening an unchanged corpus does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
from pydantic import BaseModel, Field

# Bump when tokenisation or the on-disk layout changes: it is part of the cache key, so old
# caches are simply not found instead of being misread.
INDEX_VERSION = "bm25s-v1-lower-en-stopwords"
CACHE_SUFFIX = ".bm25"
_META = "meta.json"


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file and the line or row."""


class Document(BaseModel):
    """One page of the corpus; `links` are ids of pages it points to."""

    id: str
    title: str = ""
    text: str
    links: list[str] = Field(default_factory=list)


def _row_to_document(row: Any, where: str) -> Document:
    """Validate one raw row; `where` is `file:line` (or `file: row n`) for the error message."""
    if not isinstance(row, dict):
        raise CorpusError(f"{where}: expected an object with id and text, got {type(row).__name__}")
    for key in ("id", "text"):
        if row.get(key) is None or (key == "id" and str(row[key]) == ""):
            raise CorpusError(f"{where}: missing required field {key!r}")
    # Ids are compared as strings: a JSON number id and the same id quoted are one document.
    links = row.get("links")
    return Document(
        id=str(row["id"]),
        title=str(row.get("title") or ""),
        text=str(row["text"]),
        links=[str(link) for link in links] if links is not None else [],
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{lineno}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{lineno}: invalid JSON: {exc.msg}") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import pyarrow.parquet as pq

    for n, row in enumerate(pq.read_table(path).to_pylist(), start=1):
        yield f"{path}: row {n}", row


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    if not path.is_file():
        raise CorpusError(f"{path}: corpus file not found")
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    if path.suffix in {".jsonl", ".json", ".ndjson"}:
        return _jsonl_rows(path)
    raise CorpusError(f"{path}: unsupported corpus format (use .jsonl or .parquet)")


class Corpus:
    """Documents in file order, with lookup by id."""

    def __init__(self, documents: Iterable[Document], sources: Sequence[Path] = ()) -> None:
        self.documents = list(documents)
        self.sources = [Path(p) for p in sources]
        self.by_id: dict[str, Document] = {}
        for doc in self.documents:
            if doc.id in self.by_id:
                raise CorpusError(f"duplicate document id {doc.id!r}")
            self.by_id[doc.id] = doc

    @classmethod
    def load(cls, paths: str | Path | Sequence[str | Path]) -> Corpus:
        """Read JSONL / Parquet file(s); CorpusError names the file and line of a bad row."""
        sources = _as_paths(paths)
        return cls((doc for _, doc in read_documents(sources)), sources)

    def get(self, doc_id: str) -> Document | None:
        return self.by_id.get(doc_id)

    def __len__(self) -> int:
        return len(self.documents)

    def __iter__(self) -> Iterator[Document]:
        return iter(self.documents)


def read_documents(paths: str | Path | Sequence[str | Path]) -> Iterator[tuple[str, Document]]:
    """(where, document) for every row of the file(s), `where` being `file:line` (or
    `file: row n`); CorpusError names the file and line of a bad row or a repeated id."""
    first_seen: dict[str, str] = {}
    for path in _as_paths(paths):
        for where, row in _rows(path):
            doc = _row_to_document(row, where)
            if doc.id in first_seen:
                raise CorpusError(
                    f"{where}: duplicate id {doc.id!r} (first at {first_seen[doc.id]})"
                )
            first_seen[doc.id] = where
            yield where, doc


def _as_paths(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    if not items:
        raise CorpusError("no corpus files given")
    return [Path(p) for p in items]


# ---- tokenisation and scoring ------------------------------------------------------------------


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased word tokens without English stop words (no stemming: no extra dependency)."""
    return bm25s.tokenize(list(texts), stopwords="en", return_ids=False, show_progress=False)


def _new_retriever(token_lists: list[list[str]]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    retriever.index(token_lists, show_progress=False)
    return retriever


def _scores(retriever: bm25s.BM25, query: str) -> np.ndarray | None:
    """BM25 score of every document, or None when no query word is in the vocabulary."""
    tokens = [t for t in tokenize([query])[0] if t in retriever.vocab_dict]
    if not tokens:
        return None
    return np.asarray(retriever.get_scores(tokens))


def top_k(scores: np.ndarray | None, k: int) -> list[tuple[int, float]]:
    """(position, score) of the k best positive scores, best first; ties keep corpus order."""
    if scores is None or k <= 0:
        return []
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(i), float(scores[i])) for i in order if scores[i] > 0]


def rank_texts(texts: Sequence[str], query: str, k: int) -> list[tuple[int, float]]:
    """Rank short texts (e.g. passages of one page) against a query with a throwaway index."""
    if not texts:
        return []
    return top_k(_scores(_new_retriever(tokenize(texts)), query), k)


# ---- the cached corpus index -------------------------------------------------------------------


def corpus_digest(paths: Sequence[Path]) -> str:
    """sha256 over the index version and each file's bytes, in order."""
    digest = hashlib.sha256(INDEX_VERSION.encode())
    for path in paths:
        digest.update(b"\0file\0")
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def default_cache_root(paths: Sequence[Path]) -> Path:
    """`.NAME.bm25/` next to the first corpus file: private to that corpus, so prunable."""
    first = paths[0]
    return first.parent / f".{first.name}{CACHE_SUFFIX}"


class CorpusIndex:
    """BM25 over a corpus's title + text; `from_cache` tells whether it was loaded, not built."""

    def __init__(self, corpus: Corpus, retriever: bm25s.BM25, from_cache: bool = False) -> None:
        self.corpus = corpus
        self.retriever = retriever
        self.from_cache = from_cache
        self.cache_path: Path | None = None

    @classmethod
    def build(cls, corpus: Corpus) -> CorpusIndex:
        """An in-memory index (nothing written to disk)."""
        texts = [f"{doc.title}\n{doc.text}" for doc in corpus]
        return cls(corpus, _new_retriever(tokenize(texts)))

    @classmethod
    def open(
        cls, paths: str | Path | Sequence[str | Path], cache_dir: str | Path | None = None
    ) -> CorpusIndex:
        """Load the corpus and its cached index, building and caching the index if needed.

        The cache entry is `<cache root>/<content hash>`; the root is `cache_dir` when given,
        otherwise a directory next to the first corpus file.
        """
        sources = _as_paths(paths)
        corpus = Corpus.load(sources)
        root = Path(cache_dir) if cache_dir is not None else default_cache_root(sources)
        entry = root / corpus_digest(sources)[:32]
        index = _load_cached(corpus, entry)
        if index is None:
            index = cls.build(corpus)
            _save_atomic(index.retriever, corpus, entry)
            if cache_dir is None:
                # Only the default root is private to this corpus; a shared cache_dir may hold
                # other corpora's entries, which must survive.
                _prune(root, keep=entry.name)
        index.cache_path = entry
        return index

    def search(self, query: str, k: int = 5) -> list[tuple[Document, float]]:
        """The k best documents with positive BM25 score, best first."""
        hits = top_k(_scores(self.retriever, query), k)
        return [(self.corpus.documents[i], score) for i, score in hits]

    def __len__(self) -> int:
        return len(self.corpus)


def _load_cached(corpus: Corpus, entry: Path) -> CorpusIndex | None:
    meta_path = entry / _META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("num_docs") != len(corpus):
            return None
        retriever = bm25s.BM25.load(str(entry), load_vocab=True, show_progress=False)
    except (OSError, ValueError, KeyError):
        return None  # an unreadable cache is rebuilt, never trusted
    return CorpusIndex(corpus, retriever, from_cache=True)


def _save_atomic(retriever: bm25s.BM25, corpus: Corpus, entry: Path) -> None:
    """Write into a temp dir beside the entry, then rename: readers never see a partial index."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=entry.parent))
    try:
        retriever.save(str(tmp), show_progress=False)
        meta = {
            "version": INDEX_VERSION,
            "num_docs": len(corpus),
            "sources": [str(p) for p in corpus.sources],
        }
        # meta.json is written last: its presence marks a complete index.
        (tmp / _META).write_text(json.dumps(meta, indent=2))
        # If another process renamed the same content into place first, theirs is as good.
        with contextlib.suppress(OSError):
            os.rename(tmp, entry)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _prune(root: Path, keep: str) -> None:
    """Drop entries of older corpus contents (temp dirs may be another process's build)."""
    for child in root.iterdir():
        if child.is_dir() and child.name != keep and _looks_like_entry(child.name):
            shutil.rmtree(child, ignore_errors=True)


def _looks_like_entry(name: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{32}", name) is not None
