"""Single-turn generation for benchmarks: chat-templated prompts, batched, with progress.

A backend with `generate_batch` gets the prompts `batch_size` at a time: one padded batch on
the hf backend, `batch_size` concurrent requests on an OpenAI-compatible server. Any other
agent (a scripted one, in tests) answers each prompt through `act`. Each finished batch is
handed to `on_batch` at once, so a run that is killed keeps what it finished.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from longhorizon.core.messages import Message
from longhorizon.core.progress import progress_bar
from longhorizon.core.sampling import SamplingParams
from longhorizon.harness.agent import Agent
from longhorizon.models.conversation import TokenConversation
from longhorizon.models.render import decode_text
from longhorizon.models.types import Completion

OnBatch = Callable[[list[int], list[Completion]], Awaitable[None] | None]


def user_prompt(text: str) -> list[Message]:
    """One user message, rendered by the model's own chat template (its default system
    prompt, if the template has one, included: that is how the model is served)."""
    return [Message(role="user", content=text)]


def response_text(agent: Agent, completion: Completion) -> str:
    """The response without special tokens (the end-of-turn token is not part of the answer)."""
    if not completion.completion_ids:
        return completion.text
    return decode_text(agent.renderer.tokenizer, completion.completion_ids, skip_special=True)


def completion_meta(completion: Completion) -> dict[str, Any]:
    """What an item result records about its generation (tokens feed the tokens/s figure)."""
    return {
        "completion_tokens": len(completion.completion_ids),
        "finish_reason": completion.finish_reason,
    }


async def _one_batch(
    agent: Agent, prompts: list[list[Message]], params: SamplingParams
) -> list[Completion]:
    backend: Any = getattr(agent, "backend", None)
    if backend is not None and hasattr(backend, "generate_batch"):
        ids = [agent.renderer.prompt_ids(p) for p in prompts]
        return list(await backend.generate_batch(ids, params))
    convos = [TokenConversation(agent.renderer, p) for p in prompts]
    return list(await asyncio.gather(*(agent.act(c, params) for c in convos)))


async def generate_all(
    agent: Agent,
    prompts: Sequence[list[Message]],
    params: SamplingParams,
    *,
    batch_size: int,
    on_batch: OnBatch,
    show_progress: bool = True,
    label: str = "generate",
) -> None:
    """Generate a response to every prompt, `batch_size` at a time, in order."""
    start = time.perf_counter()
    tokens = 0
    with progress_bar(show_progress) as progress:
        bar = progress.add_task(label, total=len(prompts), stats="")
        for lo in range(0, len(prompts), batch_size):
            index = list(range(lo, min(lo + batch_size, len(prompts))))
            completions = await _one_batch(agent, [prompts[i] for i in index], params)
            tokens += sum(len(c.completion_ids) for c in completions)
            outcome = on_batch(index, completions)
            if inspect.isawaitable(outcome):
                await outcome
            rate = tokens / max(time.perf_counter() - start, 1e-9)
            progress.update(bar, advance=len(index), stats=f"{rate:.1f} tok/s")
