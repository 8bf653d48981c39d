"""The `openai` backend: any OpenAI-compatible HTTP server, with vLLM's token-exact extensions.

Token-in-token-out needs more than the OpenAI API gives, so requests also carry vLLM's
extensions (other servers ignore unknown fields or reject them with a 4xx):

* `return_token_ids: true` -> each choice has `token_ids` (the generated ids, exactly as
  sampled) and the response `prompt_token_ids`. vLLM 0.32 keeps a generated EOS / end-of-turn
  token in `token_ids` (and gives it a logprob) while leaving it out of `text`, which is the
  `Completion.completion_ids` contract. A matched stop *string* keeps its token in
  `token_ids` too, though the server's `text` cuts the stop string off.
* `return_tokens_as_token_ids: true` -> logprob entries are keyed "token_id:N", so top
  logprobs map to ids without re-tokenizing (plain strings collide, e.g. partial UTF-8).
* `prompt_logprobs: k` -> per prompt position, a dict {id: {logprob, rank, decoded_token}}
  holding the top-k plus the actual token; this is what `score` uses.

Logprobs are of the model's raw distribution (before temperature / top-k / top-p) when the
server runs with vLLM's default `--logprobs-mode raw_logprobs` (VLLMServer passes it
explicitly); prompt logprobs are raw in every mode.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import ssl
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import certifi

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.core.sampling import SamplingParams
from longhorizon.core.tokens import FinishReason, TokenLogprob
from longhorizon.models.render import decode_text
from longhorizon.models.toolcalls import (
    OPEN_TAG,
    ToolCallFormat,
    parse_openai_tool_calls,
    parse_tool_calls,
)
from longhorizon.models.types import (
    BackendError,
    ChatResult,
    Completion,
    SequenceScores,
    ToolCallError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TOKEN_ID_PREFIX = "token_id:"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Failures where the request never reached a working server, or the connection broke before
# an answer, so resending is safe. A read timeout is not among them: the server may still be
# generating, and resending doubles its load.
RETRY_EXCEPTIONS = (
    aiohttp.ClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
    aiohttp.ClientPayloadError,
)
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "tool_calls": "stop",
    "function_call": "stop",
    "length": "length",
}


class ServerError(BackendError):
    """The server answered with an HTTP error; keeps the status and the server's message."""

    def __init__(self, url: str, status_code: int, detail: str, param: str | None = None):
        super().__init__(f"{url} answered HTTP {status_code}: {detail}")
        self.url = url
        self.status_code = status_code
        self.detail = detail
        self.param = param


class OpenAIBackend:
    """Backend over an OpenAI-compatible server (vLLM for token-exact results), via aiohttp.

    aiohttp, not httpx: at 64 concurrent requests on loopback httpx spent ~1.2 ms of client
    CPU per request against aiohttp's ~0.3 ms, most of the harness's own cost in a rollout.
    One instance belongs to one event loop (its session and semaphore are created on first
    use in that loop); use `async with` or call `aclose()` when done.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        tokenizer: str | Path | PreTrainedTokenizerBase | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float = 5.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int = 16,
        tool_format: ToolCallFormat = "hermes",
        token_ids: bool = True,
    ) -> None:
        if max_retries < 0 or max_concurrency < 1:
            raise ValueError("max_retries must be >= 0 and max_concurrency >= 1")
        self.base_url = _root_url(base_url)
        self.model_id = model
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self._tokenizer = _load_tokenizer(tokenizer)
        # No total limit: a long generation is fine while bytes keep coming within timeout_s.
        self.timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=timeout_s
        )
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_concurrency = max_concurrency
        self.tool_format = tool_format
        # False: plain chat text (an LLM judge): no vLLM token-id fields, which OpenAI's API
        # rejects with HTTP 400, and no chat logprobs, which some reasoning models reject.
        self.token_ids = token_ids
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase | None:
        return self._tokenizer

    # ---- Backend interface ------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> Completion:
        if not prompt_ids:
            raise ValueError("the prompt needs at least one token")
        payload = {**self._sampling_payload(params), "prompt": list(prompt_ids)}
        payload["logprobs"] = params.top_logprobs  # 0: only the sampled token's logprob
        start = time.perf_counter()
        data = await self._post("/v1/completions", payload)
        choice = self._first_choice(data)
        return self._completion(prompt_ids, choice, params, time.perf_counter() - start)

    async def generate_batch(
        self, prompts: list[list[int]], params: SamplingParams
    ) -> list[Completion]:
        # One request per prompt: the server batches concurrent requests itself, and the
        # semaphore bounds how many are in flight.
        return list(await asyncio.gather(*(self.generate(p, params) for p in prompts)))

    async def score(
        self, input_ids: list[int], *, positions: list[int] | None = None, top_k: int = 0
    ) -> SequenceScores:
        """log p(ids[t] | ids[:t]) and the top-k at each position, from vLLM's prompt_logprobs."""
        positions = _check_positions(input_ids, positions)
        payload = {
            "model": self.model_id,
            "prompt": list(input_ids),
            "max_tokens": 1,
            "temperature": 0.0,
            # At least 1: some servers treat 0 as "off"; vLLM adds the actual token anyway.
            "prompt_logprobs": max(top_k, 1),
        }
        try:
            data = await self._post("/v1/completions", payload)
        except ServerError as exc:
            if _rejects_prompt_logprobs(exc):
                raise self._no_scoring(f"it rejected prompt_logprobs: {exc.detail}") from exc
            raise
        choice = self._first_choice(data)
        raw = choice.get("prompt_logprobs", data.get("prompt_logprobs"))
        if not isinstance(raw, list):
            raise self._no_scoring("its response has no prompt_logprobs")
        if len(raw) != len(input_ids):
            raise BackendError(
                f"{self.base_url} returned {len(raw)} prompt logprobs for {len(input_ids)} tokens"
            )
        return _scores(input_ids, raw, positions, top_k)

    async def chat(
        self,
        messages: list[Message],
        params: SamplingParams,
        tools: list[ToolSpec] | None = None,
    ) -> ChatResult:
        payload = {**self._sampling_payload(params), "messages": _api_messages(messages)}
        if self.token_ids:  # without token ids the turn has no Completion, so no logprobs
            payload["logprobs"] = True
        if params.top_logprobs:
            payload["top_logprobs"] = params.top_logprobs
        if tools:
            payload["tools"] = [t.to_openai() for t in tools]
        start = time.perf_counter()
        data = await self._post("/v1/chat/completions", payload)
        latency = time.perf_counter() - start
        choice = self._first_choice(data)
        message, errors = self._assistant_message(choice.get("message") or {}, tools)
        completion = self._chat_completion(data, choice, params, latency)
        return ChatResult(message=message, parse_errors=errors, completion=completion)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> OpenAIBackend:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- requests ---------------------------------------------------------------------------
    def _sampling_payload(self, params: SamplingParams) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model_id,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if self.token_ids:
            payload["return_token_ids"] = True
            payload["return_tokens_as_token_ids"] = True
        # Optional fields only when set: the OpenAI API itself has no top_k.
        if params.top_k:
            payload["top_k"] = params.top_k
        if params.stop:
            payload["stop"] = list(params.stop)
        if params.seed is not None:
            payload["seed"] = params.seed
        return payload

    def _http(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        """The session (one connection pool) and the semaphore bounding requests in flight."""
        if self._session is None or self._session.closed:
            https = self.base_url.startswith("https:")
            # certifi's roots, so https works where the system has no CA bundle.
            tls = ssl.create_default_context(cafile=certifi.where()) if https else False
            connector = aiohttp.TCPConnector(limit=self.max_concurrency, ssl=tls)
            headers = {"Content-Type": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self.timeout, headers=headers
            )
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._session, self._semaphore

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with retries on connection failures, 5xx and 429; other 4xx raise at once.

        A retrying request keeps its semaphore slot while it backs off, so a struggling
        server does not get a burst of fresh requests on top of the retries.
        """
        session, semaphore = self._http()
        url = f"{self.base_url}{path}"
        body = json.dumps(payload).encode()
        async with semaphore:
            for attempt in range(self.max_retries + 1):
                outcome = await self._attempt(session, url, body)
                if isinstance(outcome, dict):
                    return outcome
                failure, retry_after = outcome
                if attempt < self.max_retries:
                    await asyncio.sleep(self._delay(attempt, retry_after))
        attempts = self.max_retries + 1
        raise BackendError(f"{failure} (gave up after {attempts} attempts)") from failure

    async def _attempt(
        self, session: aiohttp.ClientSession, url: str, body: bytes
    ) -> dict[str, Any] | tuple[BackendError, float | None]:
        """One POST: the JSON body, or a retryable failure and its Retry-After; others raise."""
        try:
            async with session.post(url, data=body) as response:
                status, text = response.status, (await response.read()).decode("utf-8", "replace")
                retry_after = _retry_after(response.headers.get("retry-after"))
        except RETRY_EXCEPTIONS as exc:
            return BackendError(f"cannot reach {url}: {type(exc).__name__}: {exc}"), None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"{url} failed: {type(exc).__name__}: {exc}") from exc
        if status < 400:
            return _json(text, url)
        error = _server_error(status, text, url)
        if status not in RETRY_STATUSES:
            raise error
        return error, retry_after

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with a little jitter, so clients retrying together spread out."""
        delay = self.backoff_s * (2**attempt) * (1.0 + 0.25 * random.random())
        if retry_after is not None:
            delay = max(delay, retry_after)
        return min(delay, self.max_backoff_s)

    def _first_choice(self, data: dict[str, Any]) -> dict[str, Any]:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BackendError(f"{self.base_url} returned no choices: {str(data)[:300]}")
        return choices[0]

    def _no_scoring(self, why: str) -> UnsupportedError:
        return UnsupportedError(
            f"the server at {self.base_url} does not support prompt scoring "
            f"(prompt_logprobs), {why}"
        )

    # ---- responses --------------------------------------------------------------------------
    def _completion(
        self,
        prompt_ids: list[int],
        choice: dict[str, Any],
        params: SamplingParams,
        latency: float,
    ) -> Completion:
        logprobs = choice.get("logprobs") or {}
        ids = self._completion_ids(choice, logprobs.get("tokens"))
        if ids is None:
            raise BackendError(
                f"{self.base_url} returned no completion token ids "
                "(it needs vLLM's return_token_ids or return_tokens_as_token_ids)"
            )
        top = logprobs.get("top_logprobs")
        return Completion(
            prompt_ids=list(prompt_ids),
            completion_ids=ids,
            text=self._text(ids, choice.get("text") or ""),
            logprobs=_floats(logprobs.get("token_logprobs")),
            top_logprobs=self._top_lists(top, params.top_logprobs, _completion_top_items),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            latency_s=latency,
        )

    def _chat_completion(
        self,
        data: dict[str, Any],
        choice: dict[str, Any],
        params: SamplingParams,
        latency: float,
    ) -> Completion | None:
        """The chat turn as token ids, when the server reports them (vLLM does)."""
        content = (choice.get("logprobs") or {}).get("content") or []
        ids = self._completion_ids(choice, [entry.get("token") for entry in content])
        prompt_ids = data.get("prompt_token_ids") or choice.get("prompt_token_ids")
        if ids is None or not isinstance(prompt_ids, list):
            return None
        top = [entry.get("top_logprobs") or [] for entry in content] if content else None
        return Completion(
            prompt_ids=prompt_ids,
            completion_ids=ids,
            text=self._text(ids, (choice.get("message") or {}).get("content") or ""),
            logprobs=_floats([entry.get("logprob") for entry in content]) if content else None,
            top_logprobs=self._top_lists(top, params.top_logprobs, _chat_top_items),
            finish_reason=_finish_reason(choice.get("finish_reason")),
            latency_s=latency,
        )

    def _completion_ids(self, choice: dict[str, Any], tokens: Any) -> list[int] | None:
        """`token_ids` when given; else ids from "token_id:N" logprob tokens; else None."""
        ids = choice.get("token_ids")
        if isinstance(ids, list):
            return [int(i) for i in ids]
        if isinstance(tokens, list) and tokens:
            parsed = [_parse_token_id(t) for t in tokens]
            if all(i is not None for i in parsed):
                return [int(i) for i in parsed if i is not None]
        return None

    def _text(self, ids: list[int], server_text: str) -> str:
        # With a tokenizer, text is decode(ids) exactly as the hf backend makes it (a matched
        # stop string stays in); without one, the server's text (stop string cut off).
        if self._tokenizer is None:
            return server_text
        return decode_text(self._tokenizer, ids, skip_special=True)

    def _top_lists(self, raw: Any, k: int, items: Any) -> list[list[TokenLogprob]] | None:
        """The k most likely tokens per step, most likely first.

        Servers add the sampled token when it ranks below k; the cut drops it again.
        """
        if not k or not isinstance(raw, list):
            return None
        out = []
        for step in raw:
            pairs = [(self._token_id(token), float(lp)) for token, lp in items(step)]
            pairs.sort(key=lambda pair: pair[1], reverse=True)
            out.append([TokenLogprob(token_id=t, logprob=lp) for t, lp in pairs[:k]])
        return out

    def _token_id(self, token: str) -> int:
        """The id of a logprob entry's token: "token_id:N", or a single-token string."""
        parsed = _parse_token_id(token)
        if parsed is not None:
            return parsed
        if self._tokenizer is not None:
            ids = self._tokenizer.encode(token, add_special_tokens=False)
            if len(ids) == 1:
                return int(ids[0])
        raise BackendError(
            f"cannot map logprob token {token!r} from {self.base_url} to a token id "
            "(the server ignored return_tokens_as_token_ids)"
        )

    def _assistant_message(
        self, raw: dict[str, Any], tools: list[ToolSpec] | None
    ) -> tuple[Message, list[ToolCallError]]:
        """The reply with its tool calls; unparsable calls become errors, never exceptions."""
        content = raw.get("content")
        calls, errors = parse_openai_tool_calls(raw.get("tool_calls"))
        if not calls and not errors and content and OPEN_TAG in content:
            # The server left tool-call markup in the text (no tool parser, or its parser
            # failed on a malformed call): parse it here. Content stays raw, as in the hf
            # backend, so that it renders back to what the model wrote.
            parsed = parse_tool_calls(content, self.tool_format, tools)
            calls, errors = parsed.tool_calls, parsed.errors
        message = Message(role="assistant", content=content, tool_calls=calls or None)
        return message, errors


# ---- helpers --------------------------------------------------------------------------------
def _root_url(base_url: str) -> str:
    """Accept http://host:port or http://host:port/v1; requests add /v1/... themselves."""
    url = base_url.rstrip("/")
    return url.removesuffix("/v1")


def _load_tokenizer(
    tokenizer: str | Path | PreTrainedTokenizerBase | None,
) -> PreTrainedTokenizerBase | None:
    if tokenizer is None or not isinstance(tokenizer, str | Path):
        return tokenizer
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer))


def _json(text: str, url: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackendError(f"{url} returned invalid JSON: {text[:300]!r}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"{url} returned {type(data).__name__}, expected a JSON object")
    return data


def _server_error(status: int, text: str, url: str) -> ServerError:
    """A ServerError carrying the OpenAI-style {"error": {"message", "param"}} when present."""
    detail, param = text[:500], None
    try:
        error = json.loads(text).get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        detail = str(error.get("message") or detail)
        param = error.get("param") if isinstance(error.get("param"), str) else None
    elif isinstance(error, str):
        detail = error
    return ServerError(url, status, detail, param)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date; the exponential backoff is good enough


def _rejects_prompt_logprobs(exc: ServerError) -> bool:
    """A 4xx about the prompt_logprobs field itself, not about its size (k > max_logprobs)."""
    if not 400 <= exc.status_code < 500:
        return False
    text = exc.detail.lower()
    about_field = exc.param == "prompt_logprobs" or "prompt_logprobs" in text
    about_limit = "max allowed" in text or "max_logprobs" in text
    return about_field and not about_limit


def _check_positions(input_ids: list[int], positions: list[int] | None) -> list[int]:
    if len(input_ids) < 2:
        raise ValueError("scoring needs at least two tokens")
    positions = list(range(1, len(input_ids))) if positions is None else list(positions)
    if any(not 1 <= p < len(input_ids) for p in positions):
        raise ValueError(f"positions must lie in [1, {len(input_ids) - 1}]")
    return positions


def _scores(
    input_ids: list[int], raw: list[Any], positions: list[int], top_k: int
) -> SequenceScores:
    """SequenceScores from vLLM prompt_logprobs: raw[p] = {"id": {"logprob", "rank"}, ...}."""
    result = SequenceScores(positions=positions, target_logprobs=[])
    for p in positions:
        entry = raw[p]
        if not isinstance(entry, dict):
            raise BackendError(f"no prompt logprobs for position {p}")
        target = entry.get(str(input_ids[p]))
        if not isinstance(target, dict):
            raise BackendError(f"prompt logprobs at position {p} lack the token {input_ids[p]}")
        result.target_logprobs.append(float(target["logprob"]))
        if top_k:
            # The entry holds the top-k plus the actual token when it ranks below k.
            ranked = sorted(
                ((int(t), float(v["logprob"])) for t, v in entry.items()),
                key=lambda pair: pair[1],
                reverse=True,
            )[:top_k]
            result.top_ids.append([t for t, _ in ranked])
            result.top_logprobs.append([lp for _, lp in ranked])
    return result


def _api_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as the API expects them.

    An assistant message recorded from raw text (hf backend) holds its tool-call markup in
    `content` *and* the parsed `tool_calls`; sent as is, the server's template would render
    each call twice. Send the OpenAI form instead: the text outside the calls + tool_calls.
    """
    out = []
    for m in messages:
        d = m.to_openai()
        if m.role == "assistant" and m.tool_calls and m.content and OPEN_TAG in m.content:
            d["content"] = parse_tool_calls(m.content, "auto").content or None
            if d["content"] is None:
                del d["content"]
        out.append(d)
    return out


def _parse_token_id(token: Any) -> int | None:
    if isinstance(token, str) and token.startswith(TOKEN_ID_PREFIX):
        try:
            return int(token[len(TOKEN_ID_PREFIX) :])
        except ValueError:
            return None
    return None


def _completion_top_items(step: Any) -> list[tuple[str, float]]:
    """/v1/completions top logprobs: one {token: logprob} dict per step."""
    return list(step.items()) if isinstance(step, dict) else []


def _chat_top_items(step: Any) -> list[tuple[str, float]]:
    """/v1/chat/completions top logprobs: a list of {"token", "logprob"} per step."""
    return [(e["token"], e["logprob"]) for e in step or [] if isinstance(e, dict)]


def _floats(values: Any) -> list[float] | None:
    if not isinstance(values, list):
        return None
    return [float(v) if v is not None else float("nan") for v in values]


def _finish_reason(reason: Any) -> FinishReason:
    if reason is None:
        return "stop"
    return FINISH_REASONS.get(str(reason), "error")
