"""The hf backend: generation matches transformers, scoring matches full logits, batching."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import torch

from longhorizon.core import Message, SamplingParams
from longhorizon.models.decoding import filter_logits
from longhorizon.models.hf import HFBackend
from longhorizon.models.types import Backend, Completion

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


def random_prompts(lengths: list[int]) -> list[list[int]]:
    """Prompts of random ids: a random model continues each with different tokens (chat prompts
    all decode to the same newlines), so a row mapped to the wrong place shows."""
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(3, 40000, (n,), generator=generator).tolist() for n in lengths]


def uncompacted(backend: HFBackend) -> HFBackend:
    return HFBackend(backend.model, backend.tokenizer, compact=False)


def one_by_one(
    backend: HFBackend, prompts: list[list[int]], params: SamplingParams, limits: list[int]
) -> list[Completion]:
    pairs = zip(prompts, limits, strict=True)
    return [backend.generate_sync([p], params, [n])[0] for p, n in pairs]


def forward_batch_sizes(backend: HFBackend, run: Callable[[], object]) -> list[int]:
    """The number of rows in each forward pass the model makes while `run` runs."""
    sizes: list[int] = []
    forward = backend.model.forward

    def spy(*args: Any, **kwargs: Any) -> Any:
        sizes.append(kwargs["input_ids"].shape[0])
        return forward(*args, **kwargs)

    backend.model.forward = spy
    try:
        run()
    finally:
        del backend.model.forward
    return sizes


@pytest.fixture(scope="module")
def caller_and_batch(tool_caller_path: str) -> tuple[HFBackend, list[list[int]], list[int]]:
    """The tool caller, and a batch whose rows stop at 5, 12, 33 (its EOS) and 40 tokens."""
    from tests.helpers import CALCULATOR, QUESTION_MESSAGES

    backend = HFBackend.from_pretrained(tool_caller_path)
    asks_tool = backend.renderer.prompt_ids(QUESTION_MESSAGES, [CALCULATOR])
    return backend, [asks_tool, *random_prompts([5, 9, 3])], [40, 5, 40, 12]


def test_finished_rows_leave_the_batch_and_outputs_do_not_change(
    caller_and_batch: tuple[HFBackend, list[list[int]], list[int]],
) -> None:
    backend, prompts, limits = caller_and_batch
    params = SamplingParams(temperature=0, max_tokens=40, top_logprobs=2)
    compact = backend.generate_sync(prompts, params, limits)
    static = uncompacted(backend).generate_sync(prompts, params, limits)
    alone = one_by_one(backend, prompts, params, limits)
    assert [c.finish_reason for c in compact] == ["stop", "length", "length", "length"]
    assert [len(c.completion_ids) for c in compact] == [33, 5, 40, 12]
    assert compact[0].completion_ids[-1] in backend.eos_ids
    assert len({round(c.logprobs[1], 3) for c in compact}) == 4  # a swapped row would show
    for c, s, a in zip(compact, static, alone, strict=True):
        for ref in (s, a):
            assert c.completion_ids == ref.completion_ids
            assert c.finish_reason == ref.finish_reason
            assert c.logprobs == pytest.approx(ref.logprobs, abs=1e-5)
            assert [[t.token_id for t in step] for step in c.top_logprobs or []] == [
                [t.token_id for t in step] for step in ref.top_logprobs or []
            ]


def test_forward_batch_shrinks_as_rows_finish(
    caller_and_batch: tuple[HFBackend, list[list[int]], list[int]],
) -> None:
    backend, prompts, limits = caller_and_batch
    params = SamplingParams(temperature=0, max_tokens=40)
    compact = forward_batch_sizes(backend, lambda: backend.generate_sync(prompts, params, limits))
    # prefill, then one forward after each of steps 1..39: rows end after 5, 12 and 33 tokens
    assert compact == [4] + [4] * 4 + [3] * 7 + [2] * 21 + [1] * 7
    static = uncompacted(backend)
    sizes = forward_batch_sizes(static, lambda: static.generate_sync(prompts, params, limits))
    assert sizes == [4] * 40


def test_seeded_sampling_is_the_same_compacted_and_alone(tiny_backend: HFBackend) -> None:
    prompts, limits = random_prompts([4, 11, 7]), [3, 10, 6]
    params = SamplingParams(temperature=1.0, seed=7, max_tokens=10)
    compact = tiny_backend.generate_sync(prompts, params, limits)
    static = uncompacted(tiny_backend).generate_sync(prompts, params, limits)
    alone = one_by_one(tiny_backend, prompts, params, limits)
    assert [len(c.completion_ids) for c in compact] == limits
    for c, s, a in zip(compact, static, alone, strict=True):
        assert c.completion_ids == s.completion_ids == a.completion_ids
        assert c.logprobs == pytest.approx(a.logprobs, abs=1e-5)
