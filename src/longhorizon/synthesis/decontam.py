"""Decontamination: n-gram overlap between our data and evaluation sets (13-grams by default).

Text is normalised (NFKC, lower case, every non-alphanumeric run becomes one space) and split
into words; an item is flagged when it shares any n-gram with an evaluation file. The
evaluation sets are read from the benchmark folder (JSONL, JSON, CSV: every string field) and
from any files the user adds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_N = 13
_NON_WORD = re.compile(r"[^0-9a-z]+")


def default_benchmark_dir() -> Path:
    """LONGHORIZON_BENCHMARKS, else `shared/data/benchmarks` beside the repository."""
    override = os.environ.get("LONGHORIZON_BENCHMARKS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[4] / "shared" / "data" / "benchmarks"


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
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                if file.suffix in {".jsonl", ".json", ".csv", ".txt"}:
                    index.add(file.name, file_texts(file))
        return index

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
