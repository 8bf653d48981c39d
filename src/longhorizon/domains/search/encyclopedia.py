"""A built-in, seeded, hyperlinked encyclopedia: typed entities and one page per entity.

`Encyclopedia.generate(EncyclopediaConfig(n_entities=3000, seed=0))` is deterministic in the
config: the same seed gives the same corpus bytes. `write(dir)` stores `corpus.jsonl` (the
Corpus format: id, title, text, links) and `entities.jsonl` (the structured facts the task
proposer and the scripted expert use); `read(dir)` loads both back. A real wiki corpus is
loaded into the same walkable structure with `graph.load_wiki_corpus`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from longhorizon.domains.search.entities import EncyclopediaConfig, Entity
from longhorizon.domains.search.generator import generate_entities
from longhorizon.domains.search.graph import LinkGraph
from longhorizon.domains.search.pages import PageWriter
from longhorizon.domains.search.schema import INVERSE
from longhorizon.tools.corpus import Corpus, Document

CORPUS_FILE = "corpus.jsonl"
ENTITIES_FILE = "entities.jsonl"


class Encyclopedia:
    """Entities by id, the inverse relation index, and the rendered pages (Documents)."""

    def __init__(
        self,
        entities: Sequence[Entity],
        seed: int = 0,
        documents: Sequence[Document] | None = None,
    ) -> None:
        self.entities = list(entities)
        self.seed = seed
        self.by_id: dict[str, Entity] = {}
        for entity in self.entities:
            if entity.id in self.by_id:
                raise ValueError(f"duplicate entity id {entity.id!r}")
            self.by_id[entity.id] = entity
        self._subjects: dict[tuple[str, str], list[str]] = {}
        for entity in self.entities:
            for relation, target in entity.relations.items():
                self._subjects.setdefault((relation, target), []).append(entity.id)
        if documents is None:
            writer = PageWriter(self.by_id, self.subjects, random.Random(f"pages:{seed}"))
            documents = [writer.render(e) for e in self.entities]
        self.documents = list(documents)
        self.by_kind: dict[str, list[Entity]] = {}
        for entity in self.entities:
            self.by_kind.setdefault(entity.kind, []).append(entity)
        self._graph: LinkGraph | None = None

    @classmethod
    def generate(cls, config: EncyclopediaConfig | None = None) -> Encyclopedia:
        config = config or EncyclopediaConfig()
        return cls(generate_entities(config), seed=config.seed)

    def __len__(self) -> int:
        return len(self.entities)

    def name(self, entity_id: str) -> str:
        return self.by_id[entity_id].name

    def subjects(self, relation: str, target_id: str) -> list[str]:
        """Ids of the entities whose `relation` points at `target_id`, in entity order."""
        return list(self._subjects.get((relation, target_id), ()))

    def edge_labels(self) -> dict[tuple[str, str], str]:
        """(page, linked page) -> relation label; a forward label wins over an inverse one,
        because a forward hop is always unambiguous."""
        labels: dict[tuple[str, str], str] = {}
        for entity in self.entities:
            for relation, target in entity.relations.items():
                labels[(entity.id, target)] = relation
        for entity in self.entities:
            for relation, target in entity.relations.items():
                labels.setdefault((target, entity.id), INVERSE + relation)
        return labels

    def graph(self) -> LinkGraph:
        """The hyperlink graph with relation labels (built once, then cached)."""
        if self._graph is None:
            self._graph = LinkGraph.from_documents(self.documents, self.edge_labels())
        return self._graph

    def corpus(self) -> Corpus:
        return Corpus(self.documents)

    def write(self, directory: str | Path) -> Path:
        """Write corpus.jsonl and entities.jsonl into `directory`; returns the corpus path."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        corpus_path = out / CORPUS_FILE
        _write_jsonl(corpus_path, (d.model_dump() for d in self.documents))
        _write_jsonl(out / ENTITIES_FILE, (e.to_json() for e in self.entities))
        return corpus_path

    @classmethod
    def read(cls, directory: str | Path, seed: int = 0) -> Encyclopedia:
        """Load an encyclopedia written by `write` (pages are read, not re-rendered)."""
        root = Path(directory)
        with (root / ENTITIES_FILE).open(encoding="utf-8") as f:
            entities = [Entity.from_json(json.loads(line)) for line in f if line.strip()]
        return cls(entities, seed=seed, documents=Corpus.load(root / CORPUS_FILE).documents)


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
