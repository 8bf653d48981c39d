"""Generation throughput: the hf backend vs plain `model.generate`, and vLLM via the openai backend.

Same prompts, same greedy decoding, SmolLM2-135M-Instruct (float32) on this machine's CPU.
Prints a table and writes bench/results/backend_throughput.json. The vLLM rows need the vLLM
environment (scripts/setup_vllm.sh); without it they are reported as skipped.

    python bench/backend_throughput.py [--max-tokens 64] [--repeats 2] [--no-vllm]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

import torch
from rich.console import Console
from rich.table import Table

from _common import write_result
from longhorizon.core import Message, SamplingParams
from longhorizon.models.hf import HFBackend
from longhorizon.models.registry import resolve_model

TOPICS = ["rivers", "the moon", "bread", "chess", "volcanoes", "music", "bees", "glass"]


def prompts(backend: HFBackend) -> list[list[int]]:
    return [
        backend.renderer.prompt_ids(
            [Message(role="user", content=f"Write a long essay about {t}.")]
        )
        for t in TOPICS
    ]


def timed(run: Callable[[], int], repeats: int) -> float:
    """Best tokens/s over `repeats` runs (after one warm-up run)."""
    run()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = run()
        best = max(best, tokens / (time.perf_counter() - start))
    return best


def hf_backend_run(backend: HFBackend, batch: list[list[int]], params: SamplingParams) -> int:
    return sum(len(c.completion_ids) for c in backend.generate_sync(batch, params))


def plain_generate_run(backend: HFBackend, batch: list[list[int]], max_tokens: int) -> int:
    """model.generate on the same left-padded batch; counts tokens up to and including EOS."""
    width = max(len(p) for p in batch)
    ids = torch.tensor([[backend.pad_id] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=backend.pad_id,
        )
    total = 0
    for row in out[:, width:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in backend.eos_ids), len(row))
        total += cut
    return total


def in_batches(items: list[list[int]], size: int) -> list[list[list[int]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def bench_hf(backend: HFBackend, max_tokens: int, repeats: int) -> dict[str, float]:
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    all_prompts = prompts(backend)
    results: dict[str, float] = {}
    for size in (1, 8):
        groups = in_batches(all_prompts, size)
        results[f"hf_b{size}"] = timed(
            lambda g=groups: sum(hf_backend_run(backend, b, params) for b in g), repeats
        )
        results[f"generate_b{size}"] = timed(
            lambda g=groups: sum(plain_generate_run(backend, b, max_tokens) for b in g), repeats
        )
        results[f"ratio_b{size}"] = results[f"hf_b{size}"] / results[f"generate_b{size}"]
    return results


def bench_vllm(
    model_dir: str, all_prompts: list[list[int]], max_tokens: int, repeats: int
) -> dict[str, float]:
    from longhorizon.models.openai_backend import OpenAIBackend
    from longhorizon.serving.vllm import VLLMServer, vllm_available

    if not vllm_available():
        return {}
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    results: dict[str, float] = {}
    with VLLMServer(model_dir, served_model_name="bench") as server:
        for concurrency in (1, 8):

            async def run(c: int = concurrency) -> int:
                backend = OpenAIBackend(server.base_url, model="bench", max_concurrency=c)
                try:
                    outs = await asyncio.gather(*(backend.generate(p, params) for p in all_prompts))
                finally:
                    await backend.aclose()
                return sum(len(o.completion_ids) for o in outs)

            results[f"vllm_c{concurrency}"] = timed(lambda r=run: asyncio.run(r()), repeats)
    return results


def table(results: dict[str, float]) -> Table:
    """Fits 80 columns: short workload names, the goal in the title."""
    out = Table(
        title=f"tokens/s, SmolLM2-135M float32, {len(TOPICS)} prompts, greedy; "
        "goal: ours/peer >= 0.9"
    )
    out.add_column("workload", no_wrap=True)
    for column in ("ours", "peer", "ours/peer"):
        out.add_column(column, justify="right", no_wrap=True)
    for size in (1, 8):
        out.add_row(
            f"hf backend vs model.generate, batch {size}",
            f"{results[f'hf_b{size}']:.1f}",
            f"{results[f'generate_b{size}']:.1f}",
            f"{results[f'ratio_b{size}']:.3f}",
        )
    for c in (1, 8):
        value = results.get(f"vllm_c{c}")
        shown = f"{value:.1f}" if value else "skipped: no vLLM env"
        out.add_row(f"openai backend -> vLLM, concurrency {c}", shown, "", "")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-vllm", action="store_true")
    args = parser.parse_args()

    model_dir = resolve_model("smollm2-135m")
    backend = HFBackend.from_pretrained(model_dir, dtype="float32")
    results = bench_hf(backend, args.max_tokens, args.repeats)
    if not args.no_vllm:
        results |= bench_vllm(model_dir, prompts(backend), args.max_tokens, args.repeats)

    Console().print(table(results))

    payload = {
        "model": "smollm2-135m (float32)",
        "prompts": len(TOPICS),
        "max_tokens": args.max_tokens,
        "repeats": args.repeats,
        "tokens_per_s": results,
    }
    write_result("backend_throughput", payload)


if __name__ == "__main__":
    main()
