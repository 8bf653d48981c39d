"""Decontamination: n-gram overlap between our data and evaluation sets (13-grams by default).

Text is normalised (NFKC, lower case, every non-alphanumeric run becomes one space) and split
into words; an item is flagged when it shares any n-gram with an evaluation file. The
evaluation sets are read from the benchmark folder (JSONL, JSON, CSV: every string field) and
from any files the user adds. The folder comes from the explicit setting in
`core.benchmarks`: a missing folder raises, and `LONGHORIZON_BENCHMARKS=none` turns the audit
off (reported as "audit off"), so an empty index never passes for clean data.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core.benchmarks import BenchmarkDataMissing, benchmark_dir, benchmarks_off

DEFAULT_N = 13
AUDIT_OFF = "audit off"  # what reports say when LONGHORIZON_BENCHMARKS=none (never "0 flagged")
_NON_WORD = re.compile(r"[^0-9a-z]+")
_EVAL_SUFFIXES = {".jsonl", ".json", ".csv", ".txt"}


def words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub(" ", text).split()


def ngram_keys(text: str, n: int = DEFAULT_N) -> set[bytes]:
    """Hashes (8 bytes) of the text's word n-grams: small enough for large evaluation sets."""
    toks = words(text)
    return {
        hashlib.blake2b(" ".join(toks[i : i + n]).encode(), digest_size=8).digest()
        for i in range(len(toks) - n + 1)
    }


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def file_texts(path: Path) -> Iterator[str]:
    """Every string field of a JSONL, JSON or CSV file (a UTF-8 BOM is tolerated)."""
    if path.suffix == ".jsonl":
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                yield from _strings(json.loads(line))
    elif path.suffix == ".json":
        yield from _strings(json.loads(path.read_text(encoding="utf-8-sig")))
    elif path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f):
                yield from row
    else:
        yield path.read_text(encoding="utf-8-sig", errors="replace")


@dataclass(frozen=True)
class Hit:
    item_id: str
    source: str
    shared_ngrams: int


class ContaminationIndex:
    """The n-grams of evaluation files, each remembered with the file it came from."""

    def __init__(self, n: int = DEFAULT_N) -> None:
        self.n = n
        self.sources: dict[bytes, str] = {}

    @classmethod
    def from_paths(cls, paths: Iterable[Path], n: int = DEFAULT_N) -> ContaminationIndex:
        index = cls(n)
        index.add_paths(paths)
        return index

    def add_paths(self, paths: Iterable[Path]) -> None:
        """Index more evaluation files or folders (each file under its own name)."""
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.suffix in _EVAL_SUFFIXES:
                    self.add(file.name, file_texts(file))

    def add(self, source: str, texts: Iterable[str]) -> None:
        for text in texts:
            for key in ngram_keys(text, self.n):
                self.sources.setdefault(key, source)

    def check(self, item_id: str, text: str) -> Hit | None:
        shared = [self.sources[k] for k in ngram_keys(text, self.n) if k in self.sources]
        if not shared:
            return None
        return Hit(item_id, max(set(shared), key=shared.count), len(shared))

    def audit(self, items: Iterable[tuple[str, str]]) -> list[Hit]:
        return [hit for item_id, text in items if (hit := self.check(item_id, text))]


def benchmark_index(
    eval_sets: Sequence[Path] = (), n: int = DEFAULT_N
) -> ContaminationIndex | None:
    """The n-grams of the benchmark folder and of `eval_sets`; None when the audit is off.

    Off means `LONGHORIZON_BENCHMARKS=none` and no extra evaluation files. A missing benchmark
    folder, a folder without evaluation files, or a missing extra file raises: each would
    otherwise index nothing and report every item clean.
    """
    missing = [str(p) for p in eval_sets if not p.exists()]
    if missing:
        raise FileNotFoundError(f"evaluation files for the audit not found: {', '.join(missing)}")
    if benchmarks_off():
        return ContaminationIndex.from_paths(eval_sets, n) if eval_sets else None
    folder = benchmark_dir()
    index = ContaminationIndex.from_paths([folder], n)
    if not index.sources:
        raise BenchmarkDataMissing(f"{folder} holds no evaluation files ({sorted(_EVAL_SUFFIXES)})")
    index.add_paths(eval_sets)
    return index
