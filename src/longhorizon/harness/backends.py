"""Open the model an episode runs: in-process (`hf`), a server (`openai`), or a vLLM we start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from longhorizon.harness.agent import BackendAgent
from longhorizon.models.registry import resolve_model

BackendKind = Literal["hf", "openai", "vllm"]


@asynccontextmanager
async def open_agent(
    model: str,
    kind: BackendKind = "hf",
    *,
    base_url: str | None = None,
    tokenizer: str | None = None,
    max_concurrency: int = 16,
) -> AsyncIterator[BackendAgent]:
    """A BackendAgent for `model`; `vllm` starts a loopback server for the run and stops it."""
    if kind == "hf":
        from longhorizon.models.hf import HFBackend

        backend = HFBackend.from_pretrained(resolve_model(model), max_batch_size=max_concurrency)
        try:
            yield BackendAgent(backend)
        finally:
            await backend.aclose()
        return
    from longhorizon.models.openai_backend import OpenAIBackend

    if kind == "openai":
        if base_url is None:
            raise ValueError("--backend openai needs --base-url (the server's /v1 address)")
        async with OpenAIBackend(
            base_url, model=model, tokenizer=tokenizer, max_concurrency=max_concurrency
        ) as backend:
            yield BackendAgent(backend)
        return
    from longhorizon.serving.vllm import VLLMServer

    path = resolve_model(model)
    with VLLMServer(path, served_model_name="policy") as server:
        async with OpenAIBackend(
            server.base_url,
            model="policy",
            tokenizer=tokenizer or path,
            max_concurrency=max_concurrency,
        ) as backend:
            yield BackendAgent(backend)
