"""The `openai` backend against a real vLLM CPU server (SmolLM2-135M, float32), plus error paths.

Tests marked `vllm` share one server (the session fixture `vllm_server` in conftest.py) and are
skipped when the vLLM environment is absent. Error-path tests use a closed port or a tiny
stdlib HTTP server on loopback and always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from longhorizon.core.messages import FunctionCall, Message, ToolCall, ToolSpec
from longhorizon.core.sampling import SamplingParams
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.types import Backend, BackendError, UnsupportedError
from longhorizon.serving.vllm import VLLMServer, VLLMServerError, free_port
from tests.chat_server import loopback_server

T = TypeVar("T")

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "city name"}},
        "required": ["city"],
    },
)
GREEDY = SamplingParams(temperature=0.0, max_tokens=24, top_logprobs=3)


def run_with(backend: OpenAIBackend, use: Callable[[OpenAIBackend], Awaitable[T]]) -> T:
    """Run `use(backend)` in a fresh event loop and close the backend's client in it."""

    async def main() -> T:
        async with backend:
            return await use(backend)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def reference(vllm_server: VLLMServer) -> Any:
    """The same checkpoint in-process with transformers, float32: the ground truth."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(vllm_server.model_path, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(vllm_server.model_path)


def make_backend(server: VLLMServer, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(
        server.base_url,
        model=server.served_model_name,
        tokenizer=server.model_path,
        **kwargs,
    )


def chat_ids(tokenizer: Any, messages: list[dict[str, Any]], tools: Any = None) -> list[int]:
    text = tokenizer.apply_chat_template(
        messages, tools=tools, add_generation_prompt=True, tokenize=False
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# ------------------------------------------------------------------------- real vLLM server


@pytest.mark.vllm
def test_backend_satisfies_protocol(vllm_server: VLLMServer) -> None:
    backend = make_backend(vllm_server)
    assert isinstance(backend, Backend)
    assert backend.name == "openai"
    assert backend.model_id == "smollm2-135m"
    assert backend.tokenizer is not None


@pytest.mark.vllm
def test_chat_with_tool_and_top_logprobs(vllm_server: VLLMServer) -> None:
    messages = [Message(role="user", content="What is the weather in Paris? Use the tool.")]
    params = SamplingParams(temperature=0.0, max_tokens=40, top_logprobs=5)
    result = run_with(
        make_backend(vllm_server), lambda b: b.chat(messages, params, tools=[WEATHER])
    )

    assert result.message.role == "assistant"
    assert result.message.content or result.message.tool_calls
    completion = result.completion
    assert completion is not None
    assert completion.prompt_ids and completion.completion_ids
    assert completion.logprobs is not None
    assert len(completion.logprobs) == len(completion.completion_ids)
    assert completion.top_logprobs is not None
    assert len(completion.top_logprobs) == len(completion.completion_ids)
    for step in completion.top_logprobs:
        assert len(step) == 5
        values = [t.logprob for t in step]
        assert values == sorted(values, reverse=True)
    if completion.finish_reason == "stop":  # stopped on <|im_end|>: it stays in the ids
        assert completion.completion_ids[-1] == 2


@pytest.mark.vllm
def test_generate_ids_text_logprobs(vllm_server: VLLMServer, reference: Any) -> None:
    _, tokenizer = reference
    prompt = chat_ids(tokenizer, [{"role": "user", "content": "Say hi."}])
    completion = run_with(make_backend(vllm_server), lambda b: b.generate(prompt, GREEDY))

    ids = completion.completion_ids
    assert completion.prompt_ids == prompt
    assert ids and completion.text == tokenizer.decode(ids, skip_special_tokens=True)
    assert completion.logprobs is not None and len(completion.logprobs) == len(ids)
    assert completion.top_logprobs is not None and len(completion.top_logprobs) == len(ids)
    for token, logprob, top in zip(ids, completion.logprobs, completion.top_logprobs, strict=True):
        assert len(top) == 3
        assert top[0].token_id == token  # greedy picks the most likely token
        assert logprob == pytest.approx(top[0].logprob)
    assert completion.finish_reason in ("stop", "length")
    if completion.finish_reason == "stop":
        assert ids[-1] == tokenizer.eos_token_id  # the generated end-of-turn is kept


@pytest.mark.vllm
def test_greedy_matches_transformers_generate(vllm_server: VLLMServer, reference: Any) -> None:
    import torch

    model, tokenizer = reference
    prompt = chat_ids(tokenizer, [{"role": "user", "content": "Tell me a story about a cat."}])
    params = SamplingParams(temperature=0.0, max_tokens=24)
    completion = run_with(make_backend(vllm_server), lambda b: b.generate(prompt, params))

    with torch.inference_mode():
        out = model.generate(
            torch.tensor([prompt]), max_new_tokens=24, do_sample=False, pad_token_id=2
        )
    expected = out[0, len(prompt) :].tolist()
    n = min(len(expected), len(completion.completion_ids))
    print(f"vllm {completion.completion_ids}\nhf   {expected}")
    assert n >= 8
    assert completion.completion_ids[:n] == expected[:n]


@pytest.mark.vllm
def test_sampled_logprobs_are_the_raw_distribution(vllm_server: VLLMServer, reference: Any) -> None:
    """With temperature 0.5 and top-k 3, logprobs must still be log_softmax of the raw logits."""
    import torch

    model, tokenizer = reference
    prompt = chat_ids(tokenizer, [{"role": "user", "content": "Name a colour."}])
    params = SamplingParams(temperature=0.5, top_k=3, max_tokens=12, seed=7)
    completion = run_with(make_backend(vllm_server), lambda b: b.generate(prompt, params))

    ids = prompt + completion.completion_ids
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    steps = torch.arange(len(prompt) - 1, len(ids) - 1)
    expected = logp[steps, torch.tensor(completion.completion_ids)].tolist()
    assert completion.logprobs == pytest.approx(expected, abs=1e-2)


@pytest.mark.vllm
def test_generate_batch_is_concurrent_and_consistent(vllm_server: VLLMServer) -> None:
    prompts = [[1, 9690, 198, 2683, 359], [1, 4093, 198, 19556], [1, 9690, 198, 2683, 359]]
    params = SamplingParams(temperature=0.0, max_tokens=6)
    results = run_with(
        make_backend(vllm_server, max_concurrency=2), lambda b: b.generate_batch(prompts, params)
    )
    assert [r.prompt_ids for r in results] == prompts
    assert results[0].completion_ids == results[2].completion_ids
    assert all(r.completion_ids for r in results)


@pytest.mark.vllm
def test_score_matches_in_process_reference(vllm_server: VLLMServer, reference: Any) -> None:
    import torch

    model, tokenizer = reference
    messages = [
        {"role": "user", "content": "What is the weather in Paris right now?"},
        {
            "role": "assistant",
            "content": '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
            "\n</tool_call>",
        },
        {"role": "tool", "content": '{"temperature_c": 18, "sky": "cloudy"}'},
        {"role": "assistant", "content": "It is 18 degrees Celsius and cloudy in Paris."},
        {"role": "user", "content": "Thanks! Should I take an umbrella?"},
    ]
    ids = chat_ids(tokenizer, messages)
    assert 100 <= len(ids) <= 200
    top_k = 5
    scores = run_with(make_backend(vllm_server), lambda b: b.score(ids, top_k=top_k))

    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
    positions = list(range(1, len(ids)))
    assert scores.positions == positions
    ref_target = logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist()
    ref_top = logp[:-1].topk(top_k, dim=-1)

    diffs = [abs(a - b) for a, b in zip(scores.target_logprobs, ref_target, strict=True)]
    top1 = sum(
        s[0] == r[0] for s, r in zip(scores.top_ids, ref_top.indices.tolist(), strict=True)
    ) / len(positions)
    same_sets = sum(
        set(s) == set(r) for s, r in zip(scores.top_ids, ref_top.indices.tolist(), strict=True)
    ) / len(positions)
    print(
        f"score vs transformers over {len(positions)} positions: top-1 agreement {top1:.4f}, "
        f"top-{top_k} set agreement {same_sets:.4f}, max |target logprob diff| {max(diffs):.2e}"
    )
    assert all(len(t) == top_k for t in scores.top_ids)
    assert all(v == sorted(v, reverse=True) for v in scores.top_logprobs)
    assert top1 >= 0.99
    assert max(diffs) < 1e-2
    assert same_sets >= 0.9


@pytest.mark.vllm
def test_score_positions_without_top_k(vllm_server: VLLMServer) -> None:
    ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173]
    scores = run_with(make_backend(vllm_server), lambda b: b.score(ids, positions=[3, 8]))
    assert scores.positions == [3, 8]
    assert len(scores.target_logprobs) == 2
    assert all(lp <= 0 for lp in scores.target_logprobs)
    assert scores.top_ids == [] and scores.top_logprobs == []


# ------------------------------------------------------------------------------ error paths


@dataclass
class FakeServer:
    """A loopback HTTP server answering every POST with one canned (status, JSON body)."""

    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    delay_s: float = 0.0  # wait this long before answering
    raw: bytes | None = None  # answer these bytes instead of the JSON body
    hang_up: bool = False  # close the connection without answering


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    fake = FakeServer()

    def respond(
        path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes] | None:
        fake.requests.append({"path": path, **body})
        time.sleep(fake.delay_s)
        if fake.hang_up:
            return None
        return fake.status, fake.raw if fake.raw is not None else json.dumps(fake.body).encode()

    with loopback_server(respond) as url:
        fake.url = url
        yield fake


def fast_backend(url: str, **kwargs: Any) -> OpenAIBackend:
    options = {"max_retries": 2, "backoff_s": 0.01, "connect_timeout_s": 0.5, "timeout_s": 5.0}
    return OpenAIBackend(url, model="m", **{**options, **kwargs})


def test_closed_port_raises_backend_error_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    with pytest.raises(BackendError, match="gave up after 3 attempts") as info:
        run_with(fast_backend(url), lambda b: b.generate([1, 2, 3], GREEDY))
    assert url in str(info.value)


def test_read_timeout_is_not_retried(fake_server: FakeServer) -> None:
    fake_server.delay_s = 1.0  # the server may still be generating: resending doubles load
    with pytest.raises(BackendError, match="failed: SocketTimeoutError"):
        run_with(fast_backend(fake_server.url, timeout_s=0.2), lambda b: b.generate([1], GREEDY))
    # The client has given up; on a loaded machine the server thread may record it only now.
    deadline = time.monotonic() + 10
    while not fake_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(fake_server.requests) == 1


def test_dropped_connection_is_retried(fake_server: FakeServer) -> None:
    fake_server.hang_up = True
    with pytest.raises(BackendError, match="gave up after 3 attempts") as info:
        run_with(fast_backend(fake_server.url), lambda b: b.generate([1, 2], GREEDY))
    assert "ServerDisconnectedError" in str(info.value)
    assert len(fake_server.requests) == 3


def test_invalid_json_answer_is_a_clear_error(fake_server: FakeServer) -> None:
    fake_server.raw = b"<html>proxy error</html>"
    with pytest.raises(BackendError, match="returned invalid JSON: '<html>proxy error"):
        run_with(fast_backend(fake_server.url), lambda b: b.generate([1, 2], GREEDY))


def test_5xx_is_retried_and_4xx_is_not(fake_server: FakeServer) -> None:
    fake_server.status, fake_server.body = 503, {"error": {"message": "overloaded"}}
    with pytest.raises(BackendError, match="overloaded"):
        run_with(fast_backend(fake_server.url), lambda b: b.generate([1, 2], GREEDY))
    assert len(fake_server.requests) == 3

    fake_server.requests.clear()
    fake_server.status, fake_server.body = 400, {"error": {"message": "bad prompt"}}
    with pytest.raises(BackendError, match="bad prompt"):
        run_with(fast_backend(fake_server.url), lambda b: b.generate([1, 2], GREEDY))
    assert len(fake_server.requests) == 1


def test_score_without_prompt_logprobs_is_unsupported(fake_server: FakeServer) -> None:
    fake_server.body = {"choices": [{"index": 0, "text": "x", "finish_reason": "length"}]}
    with pytest.raises(UnsupportedError, match="does not support prompt scoring") as info:
        run_with(fast_backend(fake_server.url), lambda b: b.score([1, 2, 3], top_k=2))
    assert fake_server.url in str(info.value)
    sent = fake_server.requests[0]
    assert sent["path"] == "/v1/completions"
    assert sent["prompt"] == [1, 2, 3] and sent["prompt_logprobs"] == 2


def test_score_rejected_field_is_unsupported(fake_server: FakeServer) -> None:
    fake_server.status = 400
    fake_server.body = {"error": {"message": "Unrecognized request argument: prompt_logprobs"}}
    with pytest.raises(UnsupportedError, match=fake_server.url):
        run_with(fast_backend(fake_server.url), lambda b: b.score([1, 2, 3]))


def test_chat_invalid_tool_arguments_become_parse_errors(fake_server: FakeServer) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{"}}
    fake_server.body = {
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    messages = [Message(role="user", content="weather?")]
    result = run_with(
        fast_backend(fake_server.url), lambda b: b.chat(messages, GREEDY, tools=[WEATHER])
    )
    assert result.message.tool_calls is None
    assert len(result.parse_errors) == 1 and "get_weather" in result.parse_errors[0].raw
    assert result.completion is None  # this server reports no token ids
    assert fake_server.requests[0]["tools"][0]["function"]["name"] == "get_weather"


def test_chat_parses_tool_markup_left_in_content(fake_server: FakeServer) -> None:
    text = (
        'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}'
        "\n</tool_call>\n<tool_call>\n{not json}\n</tool_call>"
    )
    fake_server.body = {
        "choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]
    }
    result = run_with(
        fast_backend(fake_server.url),
        lambda b: b.chat([Message(role="user", content="hi")], GREEDY, [WEATHER]),
    )
    assert result.message.content == text  # raw text kept, as the hf backend does
    calls = result.message.tool_calls
    assert calls is not None and calls[0].function.parsed_arguments() == {"city": "Oslo"}
    assert len(result.parse_errors) == 1


def test_chat_sends_raw_assistant_turns_in_openai_form(fake_server: FakeServer) -> None:
    raw = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    call = ToolCall(
        id="c0", function=FunctionCall(name="get_weather", arguments='{"city": "Oslo"}')
    )
    history = [
        Message(role="user", content="weather?"),
        Message(role="assistant", content=raw, tool_calls=[call]),
        Message(role="tool", content="sunny", tool_call_id="c0"),
    ]
    fake_server.body = {"choices": [{"message": {"role": "assistant", "content": "Sunny."}}]}
    result = run_with(fast_backend(fake_server.url), lambda b: b.chat(history, GREEDY))
    assert result.message.content == "Sunny."
    sent = fake_server.requests[0]["messages"][1]
    assert "content" not in sent  # markup moved out: the template renders tool_calls once
    assert sent["tool_calls"][0]["function"]["name"] == "get_weather"


# ------------------------------------------------------------------ VLLMServer failure modes


def fake_venv(root: Path, body: str) -> Path:
    """A "venv" whose python is a shell script, standing in for a vLLM that fails to start."""
    python = root / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return root


def test_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path / "venv", 'echo "RuntimeError: out of cheese" >&2\nexit 3')
    server = VLLMServer("fake/model", venv=venv, log_path=tmp_path / "server.log")
    with pytest.raises(VLLMServerError, match="exited with code 3") as info:
        server.start()
    assert "out of cheese" in str(info.value)
    assert "--served-model-name model" in str(info.value)
    assert not server.running


def test_server_that_never_gets_ready_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    venv = fake_venv(tmp_path / "venv", f"echo $$ > {pid_file}\nexec sleep 60")
    server = VLLMServer("fake/model", venv=venv, startup_timeout_s=2)
    with pytest.raises(VLLMServerError, match="not ready after 2 s"):
        server.start()
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
