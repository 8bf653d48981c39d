"""The token view: a training sequence's exact ids, each with its loss mask and its origin.

A sequence is rebuilt from the trajectory's model calls exactly as `call_sequence` does
(parent prefix + new prompt ids + completion ids); alongside the ids we carry, for every
token, the call it was recorded with and whether it was prompt or completion, so the view can
draw call boundaries and look up the student's top-k of a generated token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorizon.core import ModelCall, Trajectory, leaf_calls

__all__ = ["Decoder", "SequenceView", "TokenCell", "find_tokenizer", "sequence_view"]


@dataclass(frozen=True)
class TokenCell:
    pos: int
    id: int
    text: str
    trained: bool  # loss mask 1
    call: int  # the model call that recorded this token
    generated: bool  # completion token of `call` (else: its new prompt ids)
    offset: int  # index within that call's prompt delta or completion
    call_start: bool  # the first token `call` added (a call boundary)


@dataclass(frozen=True)
class SequenceView:
    index: int  # into Trajectory.token_sequences()
    leaf: int  # the leaf call that ends it
    cells: list[TokenCell]

    @property
    def trained(self) -> int:
        return sum(c.trained for c in self.cells)


def _owners(calls: list[ModelCall], index: int) -> list[tuple[int, bool, int]]:
    """(call, generated, offset) of every token of call `index`'s full sequence."""
    chain = [index]
    while (parent := calls[chain[-1]].parent) is not None:
        chain.append(parent)
    owners: list[tuple[int, bool, int]] = []
    for i in reversed(chain):  # root first, as call_sequence builds it
        call = calls[i]
        del owners[call.prefix_len if call.parent is not None else 0 :]
        owners += [(i, False, j) for j in range(len(call.new_prompt_ids))]
        owners += [(i, True, j) for j in range(len(call.completion_ids))]
    return owners


class Decoder:
    """Token id -> text, through the run's tokenizer, cached per id; ids only without one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._tokenizer: Any = None
        self._cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        if self.path is None:
            return ""
        if token_id not in self._cache:
            if self._tokenizer is None:
                from transformers import AutoTokenizer  # slow import, paid on first use only

                self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._cache[token_id] = self._tokenizer.decode([token_id])
        return self._cache[token_id]


def sequence_view(traj: Trajectory, index: int, decode: Decoder) -> SequenceView:
    """Sequence `index` of the trajectory (IndexError when it has fewer)."""
    leaf = leaf_calls(traj.calls)[index]
    sequence = traj.token_sequences()[index]
    owners = _owners(traj.calls, leaf)
    cells = []
    for pos, (token, mask, (call, generated, offset)) in enumerate(
        zip(sequence.input_ids, sequence.loss_mask, owners, strict=True)
    ):
        cells.append(
            TokenCell(
                pos=pos,
                id=token,
                text=decode(token),
                trained=bool(mask),
                call=call,
                generated=generated,
                offset=offset,
                call_start=offset == 0,
            )
        )
    return SequenceView(index, leaf, cells)


TOKENIZER_DIRS = ("sft/final", "distill/final", "teachers/*/teacher", "*/final")


def find_tokenizer(run: Path, explicit: Path | None = None) -> Path | None:
    """The tokenizer to decode with: the one given, else the first the run saved."""
    if explicit is not None:
        if not _has_tokenizer(explicit):
            raise FileNotFoundError(
                f"--tokenizer {explicit}: no tokenizer.json or tokenizer_config.json there"
            )
        return explicit
    for pattern in TOKENIZER_DIRS:
        for path in sorted(run.glob(pattern)):
            if _has_tokenizer(path):
                return path
    return None


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists()
