"""What the one-step benchmarks against a TRL trainer share (opd_vs_trl, grpo_vs_trl): memory
readings, phase records, a phase clock for TRL's trainers, the fresh-process runner, and the
summary, ratios and goals of the A B A B runs.

Each side runs in its own fresh subprocess (`spawn`), which writes one result JSON: `status`
"ok" with `seconds` (per phase and total), `rss` and `completion_tokens`, or `status` "error"
with the exact error, so that a peer that cannot run leaves rows that say why.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "PhaseClock",
    "chat_prompt_ids",
    "failure",
    "goals",
    "mean",
    "phases_record",
    "ratios",
    "rss_now_mib",
    "rss_peak_mib",
    "rss_record",
    "spawn",
    "summarise",
    "version",
    "write_worker_result",
]


# ---- measurements ----------------------------------------------------------------------------
def rss_now_mib() -> float:
    """Resident set size now (VmRSS), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def rss_peak_mib() -> float:
    """resource.getrusage(RUSAGE_SELF).ru_maxrss (KiB on Linux), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_record(rss_models: float, peak_models: float, peak: float) -> dict[str, float]:
    return {
        "after_models_mib": rss_models,
        "peak_after_models_mib": peak_models,
        "peak_mib": peak,
        "extra_mib": peak - rss_models,
    }


def phases_record(
    times: dict[str, float], total: float, phases: tuple[str, ...]
) -> dict[str, float]:
    """The timed phases, "other" (the step total minus them) and the total."""
    known = sum(times.get(p, 0.0) for p in phases if p != "other")
    record = {p: times.get(p, 0.0) for p in phases if p != "other"}
    record["other"] = max(total - known, 0.0)
    record["total"] = total
    return record


def chat_prompt_ids(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    """The prompts as TRL tokenizes conversational prompts: the tokenizer's chat template."""
    return [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": t}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
            )["input_ids"]
        )
        for t in texts
    ]


def failure(stage: str, exc: BaseException, hint: str = "") -> dict[str, Any]:
    return {
        "status": "error",
        "stage": stage,
        "error": f"{type(exc).__name__}: {exc}" + (f" ({hint})" if hint else ""),
        "traceback": traceback.format_exc(limit=8)[-4000:],
    }


class PhaseClock:
    """Per-optimizer-step phase times of a TRL trainer, from wrappers and callbacks."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []
        self.marks: dict[str, float] = {}
        self.peak_after_step: list[float] = []

    @property
    def current(self) -> dict[str, float]:
        return self.steps[-1]

    def add(self, phase: str, seconds: float) -> None:
        if self.steps:
            self.current[phase] = self.current.get(phase, 0.0) + seconds

    def timed(self, phase: str, fn: Callable[..., Any], when: Callable[..., bool] | None = None):
        def wrapper(*a: Any, **kw: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                if when is None or when(*a, **kw):
                    self.add(phase, time.perf_counter() - start)

        return wrapper

    def callback(self) -> Any:
        """A transformers TrainerCallback marking step begin/end and the optimizer step."""
        from transformers import TrainerCallback

        clock = self

        class Clock(TrainerCallback):
            def on_step_begin(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
                clock.steps.append({})
                clock.marks["begin"] = time.perf_counter()

            def on_pre_optimizer_step(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
                clock.marks["pre_opt"] = time.perf_counter()

            def on_optimizer_step(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
                clock.add("optimizer_only", time.perf_counter() - clock.marks["pre_opt"])

            def on_step_end(self, a: Any, state: Any, control: Any, **kw: Any) -> None:
                clock.current["total"] = time.perf_counter() - clock.marks["begin"]
                clock.peak_after_step.append(rss_peak_mib())

        return Clock()


# ---- orchestration ---------------------------------------------------------------------------
def spawn(script: str, side: str, forwarded: list[str]) -> dict[str, Any]:
    """`python SCRIPT --worker SIDE --result-file F ...` in a fresh process; its result JSON."""
    with tempfile.TemporaryDirectory(prefix=f"{Path(script).stem}_") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, script, "--worker", side, "--result-file", str(result_file)]
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([*cmd, *forwarded], capture_output=True, text=True, env=env)
        if result_file.exists():
            result: dict[str, Any] = json.loads(result_file.read_text())
            return result
        tail = (proc.stderr or proc.stdout)[-4000:]
        error = f"exit {proc.returncode}: {tail}"
        return {"status": "error", "stage": "subprocess", "error": error}


def write_worker_result(args: argparse.Namespace, result: dict[str, Any]) -> None:
    result["loadavg_1m"] = os.getloadavg()[0]  # the cores are shared: context for the numbers
    Path(args.result_file).write_text(json.dumps(result))


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise(runs: list[dict[str, Any]], side: str, phases: tuple[str, ...]) -> dict[str, Any]:
    ok = [r for r in runs if r["side"] == side and r["status"] == "ok"]
    failed = [r for r in runs if r["side"] == side and r["status"] != "ok"]
    if not ok:
        error = failed[0]["error"] if failed else "not run"
        return {"status": "error", "error": error, "runs": 0}
    seconds = {k: mean([r["seconds"][k] for r in ok]) for k in (*phases, "total")}
    rss = {k: mean([r["rss"][k] for r in ok]) for k in ok[0]["rss"]}
    return {
        "status": "ok" if not failed else "partial",
        "runs": len(ok),
        "seconds": seconds,
        "rss": rss,
        "completion_tokens": mean([r["completion_tokens"] or 0 for r in ok]),
    }


def ratios(ours: dict[str, Any], trl: dict[str, Any]) -> dict[str, float | None]:
    if ours["status"] == "error" or trl["status"] == "error":
        return {"time_trl_over_ours": None, "peak_rss_ours_over_trl": None}
    return {
        "time_trl_over_ours": trl["seconds"]["total"] / ours["seconds"]["total"],
        "peak_rss_ours_over_trl": ours["rss"]["peak_mib"] / trl["rss"]["peak_mib"],
        "extra_rss_ours_over_trl": ours["rss"]["extra_mib"] / trl["rss"]["extra_mib"],
    }


def goals(r: dict[str, float | None]) -> dict[str, Any]:
    """Ours at least 1.5x faster per step, and no more memory (peak and extra RSS)."""
    time_ratio, peak, extra = (
        r.get("time_trl_over_ours"),
        r.get("peak_rss_ours_over_trl"),
        r.get("extra_rss_ours_over_trl"),
    )
    return {
        "time": "TRL/ours >= 1.5",
        "time_met": None if time_ratio is None else time_ratio >= 1.5,
        "memory": "ours/TRL <= 1 for peak and extra RSS",
        "memory_met": None if peak is None or extra is None else peak <= 1.0 and extra <= 1.0,
    }
