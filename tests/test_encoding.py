"""Piecewise cached encoding equals the tokenizer's own, and falls back where it would not."""

from __future__ import annotations

import random

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from longhorizon.core import Message
from longhorizon.models.encoding import TokenEncoder
from longhorizon.models.render import ChatRenderer
from tests.helpers import CALCULATOR

WORDS = ["hello", " world", "\n", "  ", "2 + 3", '{"a": 1}', "Ünï", "数学", "🙂", "x\n\ny", ""]


def full(tokenizer, text: str) -> list[int]:  # type: ignore[no-untyped-def]
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_piecewise_equals_full_encode_on_random_text(tiny_llama_path: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    encoder = TokenEncoder(tokenizer)
    assert encoder.piecewise
    specials = [t.content for t in tokenizer.added_tokens_decoder.values()]
    rng = random.Random(0)
    for _ in range(300):
        text = "".join(rng.choice(WORDS + specials) for _ in range(rng.randint(0, 12)))
        assert encoder.encode(text) == full(tokenizer, text), text
    # Repeats come from the cache and still match (and the cached lists are not aliased).
    text = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>user\nhi<|im_end|>"
    first = encoder.encode(text)
    first.append(-1)
    assert encoder.encode(text) == full(tokenizer, text)


def test_rendered_prompts_encode_the_same(tiny_llama_path: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    renderer = ChatRenderer(tokenizer)
    for question in ("What is 2 + 3?", " spaced ", "多语言"):
        messages = [
            Message(role="system", content="Be brief."),
            Message(role="user", content=question),
        ]
        text = renderer.text(messages, [CALCULATOR], add_generation_prompt=True)
        assert renderer.prompt_ids(messages, [CALCULATOR]) == full(tokenizer, text)


def test_cache_is_bounded(tiny_llama_path: str) -> None:
    encoder = TokenEncoder(AutoTokenizer.from_pretrained(tiny_llama_path), cache_size=3)
    for i in range(10):
        encoder.encode(f"piece {i}<|im_end|>")
    assert len(encoder._pieces) == 3


def _word_level(pre_tokenizer, rstrip: bool = False) -> PreTrainedTokenizerFast:  # type: ignore[no-untyped-def]
    vocab = {"[UNK]": 0, "▁a": 1, "a": 2, "▁b": 3, "b": 4, "<sep>": 5}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.Metaspace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    tokenizer.add_special_tokens(
        {"additional_special_tokens": [AddedToken("<sep>", rstrip=rstrip, normalized=False)]}
    )
    return tokenizer


def test_falls_back_where_pieces_would_differ() -> None:
    # Metaspace marks only the input's first word: a piece encoded alone would get the mark.
    first_only = _word_level(pre_tokenizers.Metaspace(prepend_scheme="first"))
    encoder = TokenEncoder(first_only)
    assert not encoder.piecewise
    assert encoder.encode("a<sep>b") == full(first_only, "a<sep>b") == [1, 5, 4]
    # An added token that swallows the whitespace after it.
    assert not TokenEncoder(_word_level(pre_tokenizers.Whitespace(), rstrip=True)).piecewise
    # Every word marked: pieces are independent again.
    assert TokenEncoder(_word_level(pre_tokenizers.Metaspace(prepend_scheme="always"))).piecewise
