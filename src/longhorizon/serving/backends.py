"""Open the model a run talks to: in-process (`hf`), a server (`openai`), or a vLLM we start.

It lives in serving, not in the harness, because the `vllm` kind starts a server: callers wrap
the backend in `harness.BackendAgent` themselves, so harness and serving stay independent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

from longhorizon.models.registry import resolve_model
from longhorizon.models.router import RoutedBackend
from longhorizon.models.types import Backend
from longhorizon.serving.vllm import VLLMServer

BackendKind = Literal["hf", "openai", "vllm"]


@asynccontextmanager
async def open_backend(
    model: str,
    kind: BackendKind = "hf",
    *,
    base_url: str | Sequence[str] | None = None,
    tokenizer: str | None = None,
    max_concurrency: int = 16,
) -> AsyncIterator[Backend]:
    """A Backend for `model`; `vllm` starts a loopback server for the run and stops it.

    `openai` with several base URLs (servers of the same model) routes each episode to the
    least-loaded server and keeps its turns there (`models.router.RoutedBackend`)."""
    # backends are imported on use: torch alone takes ~3 s, and the CLI imports this module
    if kind == "hf":
        from longhorizon.models.hf import HFBackend

        backend = HFBackend.from_pretrained(resolve_model(model), max_batch_size=max_concurrency)
        try:
            yield backend
        finally:
            await backend.aclose()
        return
    from longhorizon.models.openai_backend import OpenAIBackend

    if kind == "openai":
        urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
        if not urls:
            raise ValueError("--backend openai needs --base-url (the server's /v1 address)")
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    OpenAIBackend(
                        url, model=model, tokenizer=tokenizer, max_concurrency=max_concurrency
                    )
                )
                for url in urls
            ]
            yield clients[0] if len(clients) == 1 else RoutedBackend(clients)
        return
    path = resolve_model(model)
    with VLLMServer(path, served_model_name="policy") as server:
        async with OpenAIBackend(
            server.base_url,
            model="policy",
            tokenizer=tokenizer or path,
            max_concurrency=max_concurrency,
        ) as client:
            yield client
