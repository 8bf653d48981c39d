"""SVA head vs full-vocabulary reverse KL: time (forward + backward) and peak extra memory.

Methods, all on one sequence of T trainable positions, hidden size H, vocabulary V:
    sva k=16, sva k=64      `distill_loss(kind="sva")`, coverage monitor off (k output rows per
                            position, never T x V)
    sva k=64 + coverage     the same plus the no-gradient coverage monitor (one streamed
                            full-vocabulary forward pass: what monitoring costs when it is on)
    full chunked            `distill_loss(kind="full_rkl")` (position chunks, recomputed backward)
    full materialised       plain `log_softmax(h @ W.T)` over T x V, then
                            `kl_div(teacher, logp, log_target=True)`: of the plain forms we tried it
                            was the fastest; `(p * (logp - teacher)).sum()` had the same peak

How memory is measured (honestly, per method, in a FRESH child process):
    CPU   The child builds its inputs (hidden states, output layer, teacher signal; the teacher's
          full T x V logprobs for the full-vocabulary methods are an INPUT and not counted), runs a
          tiny warm-up on other tensors (thread pools, kernels), resets the kernel's peak-RSS mark
          (`echo 5 > /proc/self/clear_refs`, Linux >= 4.0), records VmRSS, runs forward+backward
          once and reads VmHWM. Peak extra = VmHWM - VmRSS before. It includes the gradients
          (the V x H output-layer gradient, ~545 MB at V=151,936, H=896 fp32, is needed by every
          method). Freed memory the allocator keeps could make later runs look cheaper, which is
          why memory comes from the first run in a fresh process and later repeats only time.
    CUDA  torch.cuda.max_memory_allocated() - memory_allocated() before, after a peak reset.
Time: best wall time of `repeats` forward+backward runs (the first one included; fewer repeats
for big configurations). CPU children use ONE thread by default (`--threads`): this machine's two
cores are shared with other jobs, and with two OpenMP threads a descheduled thread stalls every
barrier, which made repeated runs differ by 5x; one thread gives every method the same, stable
share. A configuration whose estimated need exceeds the memory available is
NOT run; the table says so, with the estimate (from the measured T x V multiplier of a smaller
run with the same V) instead of a number. The CPU here is shared: the load average is recorded.

    python bench/sva_loss.py [--device cuda --dtype bfloat16 --max-t 32768] [--vocabs 49152,151936]
Writes bench/results/sva_loss.json (atomically) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import Tensor

from _common import peak_rss_bytes, reset_peak_rss, run_child, write_result
from longhorizon.distill import (
    DistillLossConfig,
    StudentHead,
    TeacherSignal,
    TokenLayout,
    distill_loss,
)

METHODS = ["sva k=16", "sva k=64", "sva k=64 + coverage", "full chunked", "full materialised"]
FULL = {"sva k=64 + coverage", "full chunked", "full materialised"}  # cost ~ T * V * H
GIB = 2**30
DEFAULT_TV_FACTOR = 5.0  # extra memory of the materialised loss in units of T*V*4 bytes


# --------------------------------------------------------------------------- child


def _teacher_full(t: int, v: int, device: str, gen: torch.Generator) -> Tensor:
    """Teacher full logprobs, built in place in row chunks (no T x V temporaries)."""
    out = torch.empty(t, v, device=device)
    for s in range(0, t, 512):
        block = torch.randn(min(512, t - s), v, device=device, generator=gen) * 2
        out[s : s + block.shape[0]] = torch.log_softmax(block, -1)
    return out


def _teacher_topk(t: int, v: int, k: int, device: str, gen: torch.Generator) -> TeacherSignal:
    """k distinct ids per position (a random offset plus a fixed stride) and logprobs < 0."""
    base = torch.randint(0, v, (t, 1), device=device, generator=gen)
    ids = (base + torch.arange(k, device=device) * 997) % v
    logprobs = torch.log_softmax(torch.randn(t, k, device=device, generator=gen), -1) - 0.3
    return TeacherSignal(top_ids_NTK=ids.unsqueeze(0), top_logprobs_NTK=logprobs.unsqueeze(0))


def _make_run(spec: dict[str, Any], device: str, dtype: torch.dtype) -> Callable[[], None]:
    """Build the inputs of one method and return a forward+backward closure."""
    t, v, h, method = spec["t"], spec["v"], spec["h"], spec["method"]
    gen = torch.Generator(device=device).manual_seed(0)
    hidden = torch.randn(1, t, h, device=device, generator=gen).to(dtype).requires_grad_()
    weight = (torch.randn(v, h, device=device, generator=gen) * h**-0.5).to(dtype)
    weight.requires_grad_()
    layout = TokenLayout(
        loss_mask_NT=torch.ones(1, t, dtype=torch.bool, device=device),
        sample_domain_N=torch.zeros(1, dtype=torch.int64, device=device),
    )
    student = StudentHead(hidden_NTH=hidden, lm_head_weight_VH=weight)
    if method.startswith("sva"):
        k = int(method.split("k=")[1].split()[0])
        teacher = _teacher_topk(t, v, k, device, gen)
        cfg = DistillLossConfig(kind="sva", k=k, monitor_coverage="coverage" in method)
    else:
        teacher = TeacherSignal(logprobs_NTV=_teacher_full(t, v, device, gen).unsqueeze(0))
        cfg = DistillLossConfig(kind="full_rkl", monitor_coverage=False)

    def clear() -> None:
        hidden.grad, weight.grad = None, None

    if method == "full materialised":
        teacher_TV = teacher.logprobs_NTV[0]  # type: ignore[index]

        def run() -> None:
            clear()
            logp = torch.log_softmax((hidden[0] @ weight.T).float(), dim=-1)
            loss = F.kl_div(teacher_TV, logp, reduction="sum", log_target=True) / t
            loss.backward()

        return run

    def run_lib() -> None:
        clear()
        distill_loss(student, teacher, layout, cfg).loss.backward()

    return run_lib


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _warm_up(device: str, dtype: torch.dtype) -> None:
    """Initialise thread pools and kernels on tiny tensors so the measured run is steady."""
    for method in ("sva k=16", "sva k=64 + coverage", "full chunked", "full materialised"):
        _make_run({"t": 16, "v": 64, "h": 8, "method": method}, device, dtype)()
    _sync(device)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    device, dtype = spec["device"], getattr(torch, spec["dtype"])
    if spec["threads"] > 0:
        torch.set_num_threads(spec["threads"])
    if device == "cpu":
        with open("/proc/self/oom_score_adj", "w") as f:  # if anything dies of OOM, it is us
            f.write("1000")
    _warm_up(device, dtype)
    run = _make_run(spec, device, dtype)
    _sync(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = reset_peak_rss()
    times = []
    start = time.perf_counter()
    run()
    _sync(device)
    times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss_bytes()
    for _ in range(spec["repeats"] - 1):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return {"time_s": min(times), "times_s": times, "peak_extra_bytes": peak - before}


# --------------------------------------------------------------------------- parent


def available_bytes(device: str) -> int:
    if device == "cuda":
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    return int(psutil.virtual_memory().available)


def estimated_need(t: int, v: int, h: int, factor: float, elem: int) -> int:
    """Materialised loss: factor * T*V*4 extra, plus the T*V teacher input and the model."""
    return int(factor * t * v * 4 + t * v * 4 + 2 * v * h * elem)


def repeats_for(t: int, v: int, method: str, base: int) -> int:
    """Full-vocabulary rows cost T * V * H: one run of a big one is a minute or more on CPU."""
    if method not in FULL:
        return base
    return 1 if t * v > 2**27 else min(base, 2)


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    ts = [t for t in (2048, 8192, 32768) if t <= args.max_t]
    vocabs = [int(v) for v in args.vocabs.split(",")]
    elem = torch.empty((), dtype=getattr(torch, args.dtype)).element_size()
    rows: list[dict[str, Any]] = []
    factor_by_v: dict[int, float] = {}
    for v in vocabs:
        for t in ts:
            for method in METHODS:
                row: dict[str, Any] = {"t": t, "v": v, "method": method}
                if method == "full materialised":
                    factor = factor_by_v.get(v, DEFAULT_TV_FACTOR)
                    need = estimated_need(t, v, args.hidden, factor, elem)
                    avail = available_bytes(args.device) - int(args.margin_gib * GIB)
                    if need > avail:
                        row["skipped"] = (
                            f"does not fit: needs ~{need / GIB:.1f} GiB (teacher input + "
                            f"{factor:.2f} x T*V*4 B extra, the factor measured at a smaller T), "
                            f"{avail / GIB:.1f} GiB available"
                        )
                        row["estimated_peak_extra_bytes"] = int(factor * t * v * 4)
                        rows.append(row)
                        continue
                spec = {
                    "t": t,
                    "v": v,
                    "h": args.hidden,
                    "method": method,
                    "device": args.device,
                    "dtype": args.dtype,
                    "repeats": repeats_for(t, v, method, args.repeats),
                    "threads": args.threads,
                }
                row["load_average_before"] = os.getloadavg()[0]  # the CPU may be shared
                row.update(run_child(__file__, spec, args.child_timeout_s))
                if method == "full materialised" and "peak_extra_bytes" in row:
                    factor_by_v[v] = row["peak_extra_bytes"] / (t * v * 4)
                rows.append(row)
                print(json.dumps(row), flush=True)
    add_ratios(rows)
    return rows


def estimate_skipped(rows: list[dict[str, Any]]) -> None:
    """For a materialised row that did not fit: its time scaled linearly in T (the cost is
    T * V * H) from the largest measured T with the same V, marked as an estimate."""
    for row in rows:
        if row["method"] != "full materialised" or "skipped" not in row:
            continue
        measured = [
            r for r in rows if r["method"] == row["method"] and r["v"] == row["v"] and "time_s" in r
        ]
        if measured:
            base = max(measured, key=lambda r: r["t"])
            row["estimated_time_s"] = base["time_s"] * row["t"] / base["t"]


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """speedup and memory ratio of each method vs the materialised and the chunked full loss;
    against a materialised row that did not fit, `*_estimated` ratios from its estimates."""
    estimate_skipped(rows)
    ref = {(r["t"], r["v"], r["method"]): r for r in rows}
    for row in rows:
        if "time_s" not in row:
            continue
        for name, key in (("materialised", "full materialised"), ("chunked", "full chunked")):
            base = ref.get((row["t"], row["v"], key), {})
            if "time_s" in base:
                row[f"speedup_vs_{name}"] = base["time_s"] / row["time_s"]
                row[f"memory_ratio_vs_{name}"] = base["peak_extra_bytes"] / row["peak_extra_bytes"]
                continue
            if "estimated_time_s" in base:
                row[f"speedup_vs_{name}_estimated"] = base["estimated_time_s"] / row["time_s"]
            if "estimated_peak_extra_bytes" in base:
                row[f"memory_ratio_vs_{name}_estimated"] = (
                    base["estimated_peak_extra_bytes"] / row["peak_extra_bytes"]
                )


def goal(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The target: V=151,936, T=8192, k=64: >= 5x faster, >= 10x less extra memory than the
    materialised loss (measured when it fits, otherwise from the marked estimates)."""
    row = next(
        (r for r in rows if (r["t"], r["v"], r["method"]) == (8192, 151936, "sva k=64")), None
    )
    if row is None or "time_s" not in row:
        return {"measured": False, "reason": "configuration not run"}
    out: dict[str, Any] = {
        "sva_time_s": row["time_s"],
        "sva_peak_extra_bytes": row["peak_extra_bytes"],
    }
    out.update({k: v for k, v in row.items() if k.startswith(("speedup_vs", "memory_ratio_vs"))})
    for suffix in ("", "_estimated"):
        speed = row.get(f"speedup_vs_materialised{suffix}")
        memory = row.get(f"memory_ratio_vs_materialised{suffix}")
        if speed is not None and memory is not None:
            out["met" + suffix] = speed >= 5 and memory >= 10
            break
    return out


def fmt_ratio(row: dict[str, Any], key: str) -> str:
    if key in row:
        return f"{row[key]:.1f}x"
    if f"{key}_estimated" in row:
        value = row[f"{key}_estimated"]
        return f"~{value:.0f}x*" if value >= 10 else f"~{value:.1f}x*"
    return "-"


def estimate(row: dict[str, Any], key: str, unit: float) -> str:
    return f"~{row[key] / unit:.0f}*" if key in row else "-"


def note(row: dict[str, Any]) -> str:
    if "skipped" in row:
        need = row["estimated_peak_extra_bytes"] / GIB
        return f"not run: does not fit (est. {need:.0f} GiB extra + teacher input), see JSON"
    return str(row.get("error", ""))


# Two-line headers, at most 7 wide, so that the table fits 80 columns.
COLUMNS = ("method", "time\ns", "peak\nMiB", "speed\nvs mat", "mem\nvs mat", "speed\nvs chk")
COLUMNS += ("mem\nvs chk",)


def table(rows: list[dict[str, Any]]) -> Table:
    """A section per (T, V), headed by its own row, so the table fits 80 columns."""
    out = Table(title="SVA vs full-vocabulary reverse KL (forward + backward)")
    for col in COLUMNS:
        out.add_column(col, justify="left" if col == "method" else "right", no_wrap=True)
    shape = None
    for r in rows:
        if (r["t"], r["v"]) != shape:
            if shape is not None:
                out.add_section()
            shape = (r["t"], r["v"])
            out.add_row(f"[bold]T={r['t']:,} V={r['v']:,}[/bold]", *[""] * (len(COLUMNS) - 1))
        measured = "time_s" in r
        out.add_row(
            r["method"],
            f"{r['time_s']:.2f}" if measured else estimate(r, "estimated_time_s", 1),
            f"{r['peak_extra_bytes'] / 2**20:.0f}"
            if measured
            else estimate(r, "estimated_peak_extra_bytes", 2**20),
            fmt_ratio(r, "speedup_vs_materialised"),
            fmt_ratio(r, "memory_ratio_vs_materialised"),
            fmt_ratio(r, "speedup_vs_chunked"),
            fmt_ratio(r, "memory_ratio_vs_chunked"),
        )
    return out


def show(rows: list[dict[str, Any]], console: Console) -> None:
    console.print(table(rows))
    console.print("Ratios vs the full materialised (mat) and chunked (chk) losses.")
    console.print("* estimated (not run), from a smaller run with the same V; see the JSON")
    for r in rows:
        if note(r):
            console.print(f"T={r['t']:,} V={r['v']:,} {r['method']}: {note(r)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--max-t", type=int, default=8192)
    parser.add_argument("--vocabs", default="49152,151936")
    parser.add_argument("--hidden", type=int, default=896)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads per child (0: torch default)"
    )
    parser.add_argument("--margin-gib", type=float, default=1.5)
    parser.add_argument("--child-timeout-s", type=float, default=420.0)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    started = time.time()
    load = os.getloadavg()
    rows = bench(args)
    show(rows, Console())
    payload = {
        "device": args.device,
        "dtype": args.dtype,
        "hidden": args.hidden,
        "threads": args.threads or torch.get_num_threads(),
        "load_average_at_start": load,
        "total_runtime_s": time.time() - started,
        "memory_method": "cpu: VmHWM - VmRSS after clear_refs=5, fresh child per row, first run; "
        "cuda: max_memory_allocated - memory_allocated",
        "rows": rows,
        "goal_v151936_t8192_k64": goal(rows),
    }
    write_result("sva_loss" if args.device == "cpu" else f"sva_loss-{args.device}", payload)


if __name__ == "__main__":
    main()
