"""Gather concurrent single-prompt requests into batches for a batched generate function."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from longhorizon.core.sampling import SamplingParams
from longhorizon.models.types import Completion

# (prompts, shared params, each prompt's own max_tokens) -> one completion per prompt
BatchFn = Callable[[list[list[int]], SamplingParams, list[int]], Awaitable[list[Completion]]]


def _shared(params: SamplingParams) -> SamplingParams:
    """What requests must agree on to share a batch: everything but their token budget."""
    return params.model_copy(update={"max_tokens": 1})


class MicroBatcher:
    """Requests arriving within `wait_s` of each other with equal params share one batch; their
    token budgets may differ (domains with short and long turns decode together), and the batch
    runs until its longest budget (the hf backend drops each row from it as the row ends)."""

    def __init__(self, batch_fn: BatchFn, max_batch_size: int, wait_s: float) -> None:
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self._pending: list[tuple[list[int], SamplingParams, asyncio.Future[Completion]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, prompt_ids: list[int], params: SamplingParams) -> Completion:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._pending.append((prompt_ids, params, future))
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._worker = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            await asyncio.sleep(self.wait_s)
            shared = _shared(self._pending[0][1])
            batch = [r for r in self._pending if _shared(r[1]) == shared][: self.max_batch_size]
            self._pending = [r for r in self._pending if all(r is not b for b in batch)]
            await self._run(batch, shared)

    async def _run(
        self,
        batch: list[tuple[list[int], SamplingParams, asyncio.Future[Completion]]],
        params: SamplingParams,
    ) -> None:
        try:
            limits = [b[1].max_tokens for b in batch]
            longest = params.model_copy(update={"max_tokens": max(limits)})
            results = await self.batch_fn([b[0] for b in batch], longest, limits)
        except Exception as exc:  # every waiter learns of the failure
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (*_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        if self._worker is not None and not self._worker.done():
            self._worker.cancel()
        self._pending.clear()
