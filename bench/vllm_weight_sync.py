"""Weight sync into a running vLLM server vs the fallback, restarting it on the new weights.

The real engine (`longhorizon.serving.engine.VLLMEngine`, the one GRPO and OPD use) starts a
CPU vLLM server for SmolLM2-135M-Instruct (float32), then the trainer-side model is changed and
synced `--syncs` times: checkpoint write, in-place reload through /collective_rpc, prefix-cache
reset, and (not timed) a check that the server's greedy tokens equal the trainer's. The peer in
the same run: stopping the server and starting a fresh one on the same checkpoint, `--restarts`
times, until it answers (`VLLMServer` waits for a real generated token, as on first start).

Prints a table and writes bench/results/vllm_weight_sync.json.

    python bench/vllm_weight_sync.py [--syncs 5] [--restarts 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from transformers import AutoModelForCausalLM

from _common import write_result
from longhorizon.models.registry import resolve_model
from longhorizon.serving.engine import VLLMEngine
from longhorizon.serving.options import VLLMEngineConfig
from longhorizon.serving.vllm import VLLMServer, vllm_available

MODEL = "smollm2-135m"


def perturb(model: Any, seed: int) -> None:
    """A small change to every parameter, as an optimizer step would make."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(1 + 1e-3 * torch.randn(param.shape, generator=generator))


async def sync_rounds(engine: VLLMEngine, model: Any, syncs: int) -> list[dict[str, Any]]:
    rounds = []
    try:
        for version in range(1, syncs + 1):
            perturb(model, version)
            rounds.append(await engine.sync(model, version))
    finally:
        await engine.aclose()
    return rounds


def restart_rounds(checkpoint: Path, tokenizer: str, log: Path, n: int) -> list[float]:
    """Seconds from stopping a server to a fresh one on `checkpoint` answering, n times (the
    checkpoint holds the weights only: the tokenizer comes from the starting model)."""

    def server() -> VLLMServer:
        extra = ["--tokenizer", tokenizer]
        return VLLMServer(str(checkpoint), max_model_len=2048, extra_args=extra, log_path=log)

    seconds = []
    running = server().start()
    for _ in range(n):
        start = time.perf_counter()
        running.stop()
        running = server().start()
        seconds.append(time.perf_counter() - start)
    running.stop()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--syncs", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=2)
    args = parser.parse_args()
    if not vllm_available():
        raise SystemExit("no vLLM environment: run scripts/setup_vllm.sh")
    torch.set_num_threads(1)
    path = resolve_model(MODEL)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    config = VLLMEngineConfig(max_model_len=2048, check_tokens=8)
    with tempfile.TemporaryDirectory(prefix="vllm-sync-bench-") as tmp:
        workdir = Path(tmp)
        start = time.perf_counter()
        engine = VLLMEngine.open(path, config, workdir, concurrency=1)
        first_start = time.perf_counter() - start
        try:
            rounds = asyncio.run(sync_rounds(engine, model, args.syncs))
        finally:
            engine.close()
        checkpoint = workdir / "engine" / f"step-{args.syncs:06d}"
        restarts = restart_rounds(checkpoint, path, workdir / "restart.log", args.restarts)
    report(first_start, rounds, restarts)


def median(rounds: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rounds)


def report(first_start: float, rounds: list[dict[str, Any]], restarts: list[float]) -> None:
    sync, restart = median(rounds, "sync_seconds"), statistics.median(restarts)
    table = Table(title=f"weight sync into vLLM (CPU), {MODEL} float32")
    for column in ("method", "median s", "runs", "each s"):
        table.add_column(column)
    each = " ".join(f"{r['sync_seconds']:.2f}" for r in rounds)
    table.add_row("sync in place", f"{sync:.2f}", str(len(rounds)), each)
    table.add_row("  of which checkpoint write", f"{median(rounds, 'write_seconds'):.2f}", "", "")
    table.add_row("  of which reload + reset", f"{median(rounds, 'load_seconds'):.2f}", "", "")
    each = " ".join(f"{s:.2f}" for s in restarts)
    table.add_row("restart server (peer)", f"{restart:.2f}", str(len(restarts)), each)
    console = Console()
    console.print(table)
    matched = all(r["greedy_match"] for r in rounds)
    console.print(
        f"restart / sync: {restart / sync:.1f}x; greedy match after every sync: {matched}"
    )
    write_result(
        "vllm_weight_sync",
        {
            "model": MODEL,
            "dtype": "float32",
            "syncs": rounds,
            "sync_seconds_median": sync,
            "restart_seconds": restarts,
            "restart_seconds_median": restart,
            "first_start_seconds": first_start,
            "restart_over_sync": restart / sync,
            "greedy_match_every_sync": matched,
        },
    )


if __name__ == "__main__":
    main()
