"""Token ids of rendered text, with the pieces between special tokens encoded once each.

A fast tokenizer splits its input at added tokens before normalising, pre-tokenising or
merging, so each piece between two of them tokenizes on its own. Every prompt of a protocol
repeats the same system-and-tools piece (about 800 characters, ~230 us to encode), so caching
pieces makes a rollout's prompt encodes nearly free. A probe at construction checks that
piecewise encoding equals the tokenizer's own on text shaped like our renders; where it does
not (an added token that strips whitespace, a pre-tokenizer that marks only the first word,
a slow tokenizer), encoding falls back to the full call.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

CACHE_SIZE = 4096  # pieces; a piece is one message body, a template header or a tools block
# Text shaped like chat renders: pieces that start with letters, spaces and newlines right
# after a special token, and special tokens back to back.
_PROBE_PIECES = (
    "system\nYou are a helpful assistant with tools.\n",
    "user\nWhat is 2 + 3?",
    "\n",
    " leading space and trailing space ",
    'assistant\n<tool_call>\n{"name": "calculator", "arguments": {"x": 1}}\n</tool_call>',
    "",
    "Ünïcödé → 数学 🙂\n\n",
)


class TokenEncoder:
    """`encode(text)` equal to `tokenizer(text, add_special_tokens=False)["input_ids"]`."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, cache_size: int = CACHE_SIZE) -> None:
        self.tokenizer = tokenizer
        self.cache_size = cache_size
        self._pieces: OrderedDict[str, list[int]] = OrderedDict()
        self._special = _plain_added_tokens(tokenizer)
        self._split = _splitter(self._special)
        self.piecewise = self._split is not None and self._probe_agrees()

    def encode(self, text: str) -> list[int]:
        return self._piecewise(text) if self.piecewise else self._full(text)

    def _piecewise(self, text: str) -> list[int]:
        ids: list[int] = []
        for i, piece in enumerate(self._split.split(text)):  # type: ignore[union-attr]
            if i % 2:  # the capture group: an added token
                ids.append(self._special[piece])
            elif piece:
                ids.extend(self._piece(piece))
        return ids

    def _piece(self, piece: str) -> list[int]:
        ids = self._pieces.get(piece)
        if ids is None:
            ids = self._pieces[piece] = self._backend(piece)
            if len(self._pieces) > self.cache_size:
                self._pieces.popitem(last=False)
        else:
            self._pieces.move_to_end(piece)
        return ids

    def _full(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _backend(self, piece: str) -> list[int]:
        return self.tokenizer.backend_tokenizer.encode(piece, add_special_tokens=False).ids

    def _probe_agrees(self) -> bool:
        tokens = sorted(self._special)
        pieces = [*_PROBE_PIECES, *_vocabulary_words(self.tokenizer, set(self._special.values()))]
        texts = [tok.join(pieces) for tok in tokens[:3]]
        texts.append("".join(f"{p}{t}{t}" for p, t in zip(pieces, tokens, strict=False)))
        try:
            return all(self._piecewise(t) == self._full(t) for t in texts)
        finally:
            self._pieces.clear()


def _plain_added_tokens(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """Added tokens (content -> id) when all are matched verbatim; {} otherwise."""
    if not getattr(tokenizer, "is_fast", False):
        return {}
    added = getattr(tokenizer, "added_tokens_decoder", {})
    plain = all(not (t.lstrip or t.rstrip or t.single_word or t.normalized) for t in added.values())
    return {t.content: i for i, t in added.items()} if plain else {}


def _vocabulary_words(tokenizer: PreTrainedTokenizerBase, special: set[int]) -> list[str]:
    """Pieces made of the tokenizer's own words, so the probe does not read only unknowns."""
    size = len(tokenizer)
    ids = [i for i in range(0, size, max(1, size // 24)) if i not in special]
    words = [tokenizer.decode([i]) for i in ids]
    return [f"{a} {b}" for a, b in zip(words, words[1:] + words[:1], strict=True)]


def _splitter(special: dict[str, int]) -> re.Pattern[str] | None:
    if not special:
        return None
    # Longest first: at one position the longest added token wins, as in the tokenizer.
    alternatives = "|".join(re.escape(s) for s in sorted(special, key=len, reverse=True))
    return re.compile(f"({alternatives})")
