"""The search domain's level: the world (the generated encyclopedia's size, or a user's
corpus) and the walks' length; synthesis and the held-out split share it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from longhorizon.domains.search.tasks import tool_steps

__all__ = ["SearchLevel"]


class SearchLevel(BaseModel):
    """The world's size and the walks' length; synthesis and the held-out split share it.

    `hops: [lo, hi]` is the horizon curriculum: a task of h hops reads h + 1 pages, so it
    needs 2(h + 1) tool steps. Synthesis draws h from lo..hi by `hop_weights` (uniform when
    unset); the held-out split goes round the levels, so each gets the same share of tasks.
    `corpus` replaces the generated encyclopedia with a user's pages (`wiki.py` has the
    formats), asked about in chains of cues (`chains.py`); `entities` then does nothing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    entities: int = Field(default=3000, ge=20, description="encyclopedia size")
    corpus: Path | None = Field(
        default=None,
        description="a wiki corpus to ask about instead of the generated encyclopedia: a "
        ".jsonl/.parquet file of {id, title, text, links} rows, or a folder of .md/.txt "
        "documents with [[wiki links]] or Markdown links",
    )
    hops: tuple[int, int] = Field(default=(2, 4), description="walk length, inclusive range")
    hop_weights: tuple[float, ...] | None = Field(
        default=None,
        description="synthesis: relative share of each hop count lo..hi (default: uniform)",
    )
    named_start_rate: float = Field(
        default=0.3, ge=0, le=1, description="start named, not described"
    )
    expert_error_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="the scripted expert errs (a wrong link, an early answer) as a real "
        "solver would, so the verifier has failures to reject",
    )

    def smoke(self) -> SearchLevel:
        """`run --smoke`'s level: a 300-page world and walks of at most 2 hops (a user's
        corpus stays; only the walks shorten)."""
        lo = min(self.hops[0], 2)
        fields = {"entities": min(self.entities, 300), "hops": (lo, max(lo, min(self.hops[1], 2)))}
        return self.model_validate({**self.model_dump(), **fields, "hop_weights": None})

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after runs were cached: at its default (the encyclopedia) it stays out of the
        # level's dump, so synthesis' content keys (and every stage after it) are unchanged.
        dumped = dict(handler(self))
        if self.corpus is None:
            dumped.pop("corpus", None)
        return dumped

    @field_validator("corpus")
    @classmethod
    def _corpus_exists(cls, corpus: Path | None) -> Path | None:
        if corpus is not None and not corpus.exists():
            raise ValueError(f"corpus {corpus}: no such file or folder")
        return corpus

    @model_validator(mode="after")
    def _hops_in_order(self) -> SearchLevel:
        if not 1 <= self.hops[0] <= self.hops[1]:
            raise ValueError(f"hops {self.hops}: need 1 <= min <= max")
        weights = self.hop_weights
        if weights is not None and (
            len(weights) != len(self.levels()) or min(weights) < 0 or sum(weights) <= 0
        ):
            raise ValueError(
                f"hop_weights {weights}: need one weight >= 0 per hop count "
                f"{self.hops[0]}..{self.hops[1]} ({len(self.levels())}), not all 0"
            )
        return self

    def levels(self) -> list[int]:
        """The hop counts of the curriculum, lo..hi."""
        return list(range(self.hops[0], self.hops[1] + 1))

    def tool_steps(self) -> int:
        """Tool steps the longest walk of the level needs."""
        return tool_steps(self.hops[1])
