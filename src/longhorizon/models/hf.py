"""The `hf` backend: a local transformers model with batched KV-cache generation and scoring."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.core.sampling import SamplingParams
from longhorizon.core.tokens import TokenLogprob
from longhorizon.models.batcher import MicroBatcher
from longhorizon.models.conversation import TokenConversation
from longhorizon.models.decoding import make_generators, sample_tokens
from longhorizon.models.render import ChatRenderer
from longhorizon.models.toolcalls import ToolCallFormat
from longhorizon.models.types import ChatResult, Completion, SequenceScores

if TYPE_CHECKING:
    from transformers import DynamicCache

SCORE_CHUNK = 512  # positions per output-layer chunk: bounds memory to chunk x vocab


@dataclass
class _Row:
    """Generation state of one request in a batch."""

    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[TokenLogprob]] = field(default_factory=list)
    finish: str | None = None


@dataclass
class _Live:
    """The rows still in the forward batch: their indices in the caller's batch, and the state
    that travels with each row (attention, positions, sampling generator)."""

    index: list[int]
    attention: torch.Tensor
    positions: torch.Tensor
    generators: list[torch.Generator] | None

    def drop_finished(
        self, rows: list[_Row], tokens: torch.Tensor, cache: DynamicCache
    ) -> torch.Tensor:
        """Drop finished rows from every per-row tensor and the KV cache; the live tokens."""
        keep = [k for k, i in enumerate(self.index) if not rows[i].finish]
        if len(keep) == len(self.index):
            return tokens
        where = torch.tensor(keep, device=tokens.device)
        cache.batch_select_indices(where)
        self.index = [self.index[k] for k in keep]
        self.attention, self.positions = self.attention[where], self.positions[where]
        if self.generators is not None:  # each row keeps its own generator: same samples
            self.generators = [self.generators[k] for k in keep]
        return tokens[where]

    def advance(self) -> None:
        """Attention and positions for the one new token of every live row."""
        self.attention = torch.cat(
            [self.attention, self.attention.new_ones(len(self.index), 1)], -1
        )
        self.positions = self.positions[:, -1:] + 1


def _dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


class HFBackend:
    """In-process transformers model behind the async Backend interface.

    Concurrent `generate` calls are gathered into batches (see MicroBatcher); the model runs in
    a worker thread so the event loop stays free for tools and other episodes. With `compact`
    (the default) a row that finishes leaves the batch, so later steps compute only live rows.
    """

    name = "hf"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str = "",
        max_batch_size: int = 8,
        batch_wait_s: float = 0.005,
        tool_format: ToolCallFormat = "auto",
        compact: bool = True,
    ) -> None:
        self.model = model.eval()
        self.compact = compact
        self._tokenizer = tokenizer
        self.model_id = model_id or str(getattr(model.config, "name_or_path", "hf-model"))
        self.renderer = ChatRenderer(tokenizer)
        self.tool_format = tool_format
        self.device = next(model.parameters()).device
        self.eos_ids = self._eos_ids()
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._lock = threading.Lock()  # one forward pass at a time on this model
        self._batcher = MicroBatcher(self.generate_batch, max_batch_size, batch_wait_s)

    @classmethod
    def from_pretrained(
        cls, path: str, *, device: str = "cpu", dtype: str = "auto", **kwargs: Any
    ) -> HFBackend:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dev = torch.device(device)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_dtype(dtype, dev))
        # transformers wraps `to` (functools.wraps) so mypy sees an unbound signature
        model = model.to(dev)  # type: ignore[arg-type]
        return cls(model, AutoTokenizer.from_pretrained(path), model_id=path, **kwargs)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self.model.generation_config.eos_token_id, self._tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

    # ---- async interface ------------------------------------------------------------------
    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> Completion:
        return await self._batcher.submit(prompt_ids, params)

    async def generate_batch(
        self, prompts: list[list[int]], params: SamplingParams, limits: list[int] | None = None
    ) -> list[Completion]:
        return await asyncio.to_thread(self.generate_sync, prompts, params, limits)

    async def score(
        self, input_ids: list[int], *, positions: list[int] | None = None, top_k: int = 0
    ) -> SequenceScores:
        return await asyncio.to_thread(self.score_sync, input_ids, positions, top_k)

    async def chat(
        self, messages: list[Message], params: SamplingParams, tools: list[ToolSpec] | None = None
    ) -> ChatResult:
        convo = TokenConversation(self.renderer, messages, tools, self.tool_format)
        completion = await self.generate(convo.prompt_ids(), params)
        message, errors = convo.record(completion)
        return ChatResult(message=message, parse_errors=errors, completion=completion)

    async def aclose(self) -> None:
        await self._batcher.aclose()

    # ---- generation -----------------------------------------------------------------------
    @torch.inference_mode()
    def generate_sync(
        self, prompts: list[list[int]], params: SamplingParams, limits: list[int] | None = None
    ) -> list[Completion]:
        """Batched generation with a KV cache; prompts are left-padded. `limits`: each prompt's
        own token budget, at most `params.max_tokens` (default: that for every prompt)."""
        if not prompts or any(not p for p in prompts):
            raise ValueError("every prompt needs at least one token")
        limits = limits or [params.max_tokens] * len(prompts)
        if len(limits) != len(prompts) or not all(1 <= n <= params.max_tokens for n in limits):
            raise ValueError(f"limits {limits} must give each prompt 1..{params.max_tokens} tokens")
        start = time.perf_counter()
        with self._lock:
            rows = self._decode_loop(prompts, params, limits)
        elapsed = time.perf_counter() - start
        return [self._completion(p, r, elapsed) for p, r in zip(prompts, rows, strict=True)]

    def _decode_loop(
        self, prompts: list[list[int]], params: SamplingParams, limits: list[int]
    ) -> list[_Row]:
        from transformers import DynamicCache

        input_ids, attention = self._left_pad(prompts)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        rows = [_Row() for _ in prompts]
        generators = make_generators(params, len(prompts))
        live = _Live(list(range(len(prompts))), attention, positions, generators)
        for _ in range(max(limits)):
            logits = out.logits[:, -1, :].float()
            tokens = sample_tokens(logits, params, live.generators)
            live_rows = [rows[i] for i in live.index]
            self._record_step(live_rows, logits, tokens, params, [limits[i] for i in live.index])
            if all(r.finish for r in live_rows):
                break
            if self.compact:  # the output layer costs batch x vocab: stop paying for done rows
                tokens = live.drop_finished(rows, tokens, cache)
            live.advance()
            out = self.model(
                input_ids=tokens[:, None].to(self.device),
                attention_mask=live.attention,
                position_ids=live.positions,
                past_key_values=cache,
                use_cache=True,
            )
        return rows

    def _record_step(
        self,
        rows: list[_Row],
        logits: torch.Tensor,
        tokens: torch.Tensor,
        params: SamplingParams,
        limits: list[int],
    ) -> None:
        """Append each unfinished row's token; `rows`, `limits` and the tensors are aligned."""
        lse = torch.logsumexp(logits, dim=-1, keepdim=True)  # no B x V log-softmax copy
        chosen = (logits.gather(-1, tokens[:, None]) - lse).squeeze(-1).tolist()
        top = None
        if params.top_logprobs:
            values, indices = logits.topk(params.top_logprobs, dim=-1)
            top = torch.return_types.topk((values - lse, indices))
        for i, (row, token) in enumerate(zip(rows, tokens.tolist(), strict=True)):
            if row.finish:
                continue
            row.ids.append(token)
            row.logprobs.append(chosen[i])
            if top is not None:
                ids, vals = top.indices[i].tolist(), top.values[i].tolist()
                pairs = zip(ids, vals, strict=True)
                row.top.append([TokenLogprob(token_id=t, logprob=v) for t, v in pairs])
            if token in self.eos_ids or self._hit_stop(row.ids, params.stop):
                row.finish = "stop"
            elif len(row.ids) >= limits[i]:
                row.finish = "length"

    def _hit_stop(self, ids: list[int], stop: tuple[str, ...]) -> bool:
        if not stop:
            return False
        window = self._tokenizer.decode(ids[-32:], skip_special_tokens=False)
        return any(s in window for s in stop)

    def _left_pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in prompts)
        ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p)
            attention[i, width - len(p) :] = 1
        return ids.to(self.device), attention.to(self.device)

    def _completion(self, prompt: list[int], row: _Row, elapsed: float) -> Completion:
        return Completion(
            prompt_ids=prompt,
            completion_ids=row.ids,
            text=self._tokenizer.decode(row.ids, skip_special_tokens=True),
            logprobs=row.logprobs,
            top_logprobs=row.top or None,
            finish_reason=row.finish or "length",
            latency_s=elapsed,
        )

    # ---- scoring --------------------------------------------------------------------------
    @torch.inference_mode()
    def score_sync(
        self, input_ids: list[int], positions: list[int] | None = None, top_k: int = 0
    ) -> SequenceScores:
        """log p(ids[t] | ids[:t]) and the top-k at each position t, never building T x V logits."""
        return self.score_batch_sync([(input_ids, positions)], top_k)[0]

    @torch.inference_mode()
    def score_batch_sync(
        self, requests: list[tuple[list[int], list[int] | None]], top_k: int = 0
    ) -> list[SequenceScores]:
        """Several sequences in one right-padded forward pass (a teacher scoring rollouts)."""
        wanted = [_check_positions(ids, positions) for ids, positions in requests]
        width = max(len(ids) for ids, _ in requests)
        batch = torch.full((len(requests), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(batch)
        for i, (ids, _) in enumerate(requests):
            batch[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
        batch, attention = batch.to(self.device), attention.to(self.device)
        with self._lock:
            hidden = self.model.base_model(input_ids=batch, attention_mask=attention)
            hidden = hidden.last_hidden_state
            results = []
            for i, positions in enumerate(wanted):
                result = SequenceScores(positions=positions, target_logprobs=[])
                for lo in range(0, len(positions), SCORE_CHUNK):
                    chunk = positions[lo : lo + SCORE_CHUNK]
                    self._score_chunk(hidden[i], batch[i], chunk, top_k, result)
                results.append(result)
        return results

    async def score_batch(
        self, requests: list[tuple[list[int], list[int] | None]], top_k: int = 0
    ) -> list[SequenceScores]:
        return await asyncio.to_thread(self.score_batch_sync, requests, top_k)

    def _score_chunk(
        self,
        hidden: torch.Tensor,
        ids: torch.Tensor,
        chunk: list[int],
        top_k: int,
        result: SequenceScores,
    ) -> None:
        where = torch.tensor(chunk, device=self.device)
        logits = self.model.get_output_embeddings()(hidden[where - 1]).float()
        logp = torch.log_softmax(logits, dim=-1)
        result.target_logprobs += logp.gather(-1, ids[where][:, None]).squeeze(-1).tolist()
        if top_k:
            top = logp.topk(top_k, dim=-1)
            result.top_ids += top.indices.tolist()
            result.top_logprobs += top.values.tolist()


def _check_positions(input_ids: list[int], positions: list[int] | None) -> list[int]:
    positions = list(range(1, len(input_ids))) if positions is None else positions
    if any(not 1 <= p < len(input_ids) for p in positions):
        raise ValueError(f"positions must lie in [1, {len(input_ids) - 1}]")
    return positions
