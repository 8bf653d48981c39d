"""Decode with mixed budgets: the hf backend with finished rows leaving the batch vs a static batch.

One batch of 13 chat prompts whose budgets are drawn like held-out MLE turns (median 46 tokens,
a few run to the 800-token budget): 12 rows of 46 tokens and one of 800. Both paths call the
real `HFBackend.generate_sync`, one built with `compact=True`, one with `compact=False`, on the
same model; every row runs to its budget (EOS ignored) so both generate the same tokens, which
the script checks. Greedy, tiny-llama (the tiny recipes' student, whose decode step is bound by
its 128 x 49,152 output layer) unless `--model` says otherwise, on this machine's CPU.
Prints ms per generated token and writes bench/results/decode_compaction.json.

    python bench/decode_compaction.py [--model tiny-llama] [--threads 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from _common import write_result
from longhorizon.core import Message, SamplingParams
from longhorizon.models.hf import HFBackend
from longhorizon.models.registry import resolve_model

TOPICS = ["rivers", "the moon", "bread", "chess", "volcanoes", "music", "bees", "glass"]


def prompts(backend: HFBackend, rows: int) -> list[list[int]]:
    texts = [f"Write a long essay about {TOPICS[i % len(TOPICS)]}, part {i}." for i in range(rows)]
    return [backend.renderer.prompt_ids([Message(role="user", content=t)]) for t in texts]


def best_ms_per_token(
    backend: HFBackend, batch: list[list[int]], limits: list[int], repeats: int
) -> tuple[float, list[list[int]]]:
    """Best wall ms per generated token over `repeats` runs, and the last run's token ids."""
    params = SamplingParams(temperature=0.0, max_tokens=max(limits))
    best, ids = float("inf"), list[list[int]]()
    for _ in range(repeats):
        start = time.perf_counter()
        out = backend.generate_sync(batch, params, limits)
        elapsed = time.perf_counter() - start
        ids = [c.completion_ids for c in out]
        best = min(best, 1000 * elapsed / sum(len(i) for i in ids))
    return best, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-llama")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--short", type=int, default=46, help="budget of the short rows")
    parser.add_argument("--long", type=int, default=800, help="budget of the one long row")
    parser.add_argument("--rows", type=int, default=13)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    compact = HFBackend.from_pretrained(resolve_model(args.model), dtype="float32")
    static = HFBackend(compact.model, compact.tokenizer, compact=False)
    for backend in (compact, static):
        backend.eos_ids = set()  # rows run to their drawn budgets: equal work on both paths
    batch = prompts(compact, args.rows)
    limits = [args.short] * (args.rows - 1) + [args.long]
    compact.generate_sync(batch[:2], SamplingParams(temperature=0.0, max_tokens=8))  # warm-up

    static_ms, static_ids = best_ms_per_token(static, batch, limits, args.repeats)
    compact_ms, compact_ids = best_ms_per_token(compact, batch, limits, args.repeats)
    if compact_ids != static_ids:
        raise SystemExit("compacted and static batches generated different tokens")
    ratio = static_ms / compact_ms
    print(f"{args.model}, {args.rows} rows, budgets {args.short} x {args.rows - 1} + {args.long}")
    print(f"static  {static_ms:.3f} ms/token\ncompact {compact_ms:.3f} ms/token")
    print(f"speed-up (static / compact) {ratio:.2f}x")
    write_result(
        "decode_compaction",
        {
            "model": f"{args.model} (float32)",
            "rows": args.rows,
            "limits": {"short": args.short, "short_rows": args.rows - 1, "long": args.long},
            "generated_tokens": sum(len(i) for i in compact_ids),
            "repeats": args.repeats,
            "ms_per_token": {"static": static_ms, "compact": compact_ms},
            "speedup_static_over_compact": ratio,
        },
    )


if __name__ == "__main__":
    main()
