"""The hf backend: generation matches transformers, scoring matches full logits, batching."""

from __future__ import annotations

import asyncio

import pytest
import torch

from longhorizon.core import Message, SamplingParams
from longhorizon.models.decoding import filter_logits
from longhorizon.models.hf import HFBackend
from longhorizon.models.types import Backend

PROMPTS = ["What is the capital of France?", "Name three colours.", "Hi"]


def prompt_ids(backend: HFBackend, text: str) -> list[int]:
    return backend.renderer.prompt_ids([Message(role="user", content=text)])


@pytest.mark.parametrize("arch", ["tiny_llama_path", "tiny_qwen2_path"])
def test_greedy_batch_equals_model_generate(arch: str, request: pytest.FixtureRequest) -> None:
    backend = HFBackend.from_pretrained(request.getfixturevalue(arch))
    assert isinstance(backend, Backend)
    prompts = [prompt_ids(backend, p) for p in PROMPTS]
    params = SamplingParams(temperature=0, max_tokens=12)
    ours = backend.generate_sync(prompts, params)
    for prompt, completion in zip(prompts, ours, strict=True):
        ref = backend.model.generate(
            torch.tensor([prompt]), max_new_tokens=12, do_sample=False, pad_token_id=0
        )[0, len(prompt) :].tolist()
        eos = backend.eos_ids
        cut = next((i + 1 for i, t in enumerate(ref) if t in eos), len(ref))
        assert completion.completion_ids == ref[:cut]
        assert completion.prompt_ids == prompt
        assert len(completion.logprobs) == len(completion.completion_ids)


def test_logprobs_are_the_raw_distribution(tiny_backend: HFBackend) -> None:
    prompt = prompt_ids(tiny_backend, "Hello there")
    params = SamplingParams(temperature=0.7, top_k=5, seed=1, max_tokens=6, top_logprobs=3)
    (out,) = tiny_backend.generate_sync([prompt], params)
    scores = tiny_backend.score_sync(prompt + out.completion_ids, top_k=3)
    n = len(out.completion_ids)
    assert out.logprobs == pytest.approx(scores.target_logprobs[-n:], abs=1e-4)
    assert [[t.token_id for t in step] for step in out.top_logprobs] == scores.top_ids[-n:]


def test_seeded_sampling_is_reproducible_in_any_batch(tiny_backend: HFBackend) -> None:
    prompt = prompt_ids(tiny_backend, "Tell me a story")
    params = SamplingParams(temperature=1.0, seed=7, max_tokens=10)
    alone = tiny_backend.generate_sync([prompt], params)[0].completion_ids
    batched = tiny_backend.generate_sync([prompt_ids(tiny_backend, "Hi"), prompt], params)
    assert batched[1].completion_ids == alone
    other = tiny_backend.generate_sync([prompt], params.model_copy(update={"seed": 8}))
    assert other[0].completion_ids != alone


def test_max_tokens_gives_length_and_stop_strings_stop(tiny_backend: HFBackend) -> None:
    prompt = prompt_ids(tiny_backend, "Count")
    (long,) = tiny_backend.generate_sync([prompt], SamplingParams(temperature=0, max_tokens=8))
    assert long.finish_reason == "length" and len(long.completion_ids) == 8
    first_word = tiny_backend.tokenizer.decode(long.completion_ids[:3])
    params = SamplingParams(temperature=0, max_tokens=8, stop=(first_word,))
    (stopped,) = tiny_backend.generate_sync([prompt], params)
    assert stopped.finish_reason == "stop"
    assert stopped.completion_ids == long.completion_ids[: len(stopped.completion_ids)]
    assert len(stopped.completion_ids) <= 3


def test_filter_logits_top_k_and_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    keep = lambda p: torch.isfinite(filter_logits(logits, p))[0].tolist()  # noqa: E731
    assert keep(SamplingParams(top_k=2)) == [True, True, False, False]
    assert keep(SamplingParams(top_p=0.8)) == [True, True, False, False]
    assert keep(SamplingParams(top_p=0.81)) == [True, True, True, False]
    assert keep(SamplingParams(top_p=0.1)) == [True, False, False, False]


def test_score_matches_full_logits_reference(tiny_backend: HFBackend) -> None:
    ids = [*prompt_ids(tiny_backend, "Score these tokens, please."), 504, 3575, 282]
    positions = [3, 10, len(ids) - 1]
    scores = tiny_backend.score_sync(ids, positions, top_k=4)
    with torch.no_grad():
        logits = tiny_backend.model(torch.tensor([ids])).logits[0].double()
    ref = torch.log_softmax(logits, dim=-1)
    for i, p in enumerate(positions):
        assert scores.target_logprobs[i] == pytest.approx(ref[p - 1, ids[p]].item(), abs=1e-5)
        assert scores.top_ids[i] == ref[p - 1].topk(4).indices.tolist()
        assert scores.top_logprobs[i] == pytest.approx(ref[p - 1].topk(4).values.tolist(), abs=1e-5)
    with pytest.raises(ValueError, match=r"positions must lie in \[1,"):
        tiny_backend.score_sync(ids, [0])


def test_concurrent_requests_share_a_batch(tiny_backend: HFBackend) -> None:
    seen: list[int] = []
    original = tiny_backend.generate_sync

    def spy(prompts, params, limits=None):  # type: ignore[no-untyped-def]
        seen.append(len(prompts))
        return original(prompts, params, limits)

    tiny_backend.generate_sync = spy  # type: ignore[method-assign]
    params = SamplingParams(temperature=0, max_tokens=4)
    prompts = [prompt_ids(tiny_backend, p) for p in PROMPTS]

    async def main():  # type: ignore[no-untyped-def]
        return await asyncio.gather(*(tiny_backend.generate(p, params) for p in prompts))

    try:
        results = asyncio.run(main())
    finally:
        del tiny_backend.generate_sync
    assert seen == [3]
    assert [r.prompt_ids for r in results] == prompts


def test_requests_with_different_budgets_share_a_batch_and_keep_their_own(
    tiny_backend: HFBackend,
) -> None:
    seen: list[list[int] | None] = []
    original = tiny_backend.generate_sync

    def spy(prompts, params, limits=None):  # type: ignore[no-untyped-def]
        seen.append(limits)
        return original(prompts, params, limits)

    prompts = [prompt_ids(tiny_backend, p) for p in PROMPTS]
    budgets = [3, 9, 5]
    alone = [
        original([p], SamplingParams(temperature=0, max_tokens=n))[0]
        for p, n in zip(prompts, budgets, strict=True)
    ]

    async def main():  # type: ignore[no-untyped-def]
        calls = (
            tiny_backend.generate(p, SamplingParams(temperature=0, max_tokens=n))
            for p, n in zip(prompts, budgets, strict=True)
        )
        return await asyncio.gather(*calls)

    tiny_backend.generate_sync = spy  # type: ignore[method-assign]
    try:
        together = asyncio.run(main())
    finally:
        del tiny_backend.generate_sync
    assert seen == [budgets]  # one batch, each request with its own budget
    for a, t, n in zip(alone, together, budgets, strict=True):
        assert t.completion_ids == a.completion_ids and len(t.completion_ids) <= n
        assert t.finish_reason == a.finish_reason
    with pytest.raises(ValueError, match=r"limits \[3, 12\] must give each prompt 1..9 tokens"):
        original(prompts[:2], SamplingParams(max_tokens=9), [3, 12])


def test_chat_reports_bad_tool_calls_as_values(tool_caller_path: str) -> None:
    backend = HFBackend.from_pretrained(tool_caller_path)
    messages = [Message(role="user", content="What is 2 + 3?")]
    from tests.helpers import CALCULATOR

    result = asyncio.run(backend.chat(messages, SamplingParams(temperature=0), [CALCULATOR]))
    assert result.message.tool_calls[0].function.name == "calculator"
    assert result.parse_errors == []
    # Cut the same generation short: the unclosed call becomes an error value, not an exception.
    short = asyncio.run(
        backend.chat(messages, SamplingParams(temperature=0, max_tokens=5), [CALCULATOR])
    )
    assert short.message.tool_calls is None
    assert "unclosed" in short.parse_errors[0].message


def test_batched_scoring_equals_one_by_one(tiny_backend: HFBackend) -> None:
    long = prompt_ids(tiny_backend, "A longer prompt to score, with several more words in it.")
    short = prompt_ids(tiny_backend, "Short")
    requests = [(long, None), (short, [2, 5]), (long, [len(long) - 1])]
    batched = tiny_backend.score_batch_sync(requests, top_k=3)
    for (ids, positions), got in zip(requests, batched, strict=True):
        alone = tiny_backend.score_sync(ids, positions, 3)
        assert got.positions == alone.positions and got.top_ids == alone.top_ids
        assert got.target_logprobs == pytest.approx(alone.target_logprobs, abs=1e-5)


def test_exponential_race_samples_the_distribution() -> None:
    from longhorizon.models.decoding import make_generators, sample_tokens

    probs = torch.tensor([0.6, 0.3, 0.1, 0.0])
    logits = torch.log(probs).expand(20000, 4).clone()
    params = SamplingParams(temperature=1.0, seed=5)
    drawn = sample_tokens(logits, params, None)
    freq = torch.bincount(drawn, minlength=4).double() / len(drawn)
    assert freq.tolist() == pytest.approx([0.6, 0.3, 0.1, 0.0], abs=0.015)
    seeded = sample_tokens(logits[:3], params, make_generators(params, 3))
    assert seeded.tolist() == sample_tokens(logits[:3], params, make_generators(params, 3)).tolist()
