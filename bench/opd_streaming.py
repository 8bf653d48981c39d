"""OPD step time with streamed rollouts (`rollout.max_staleness: 1`) against the on-policy loop
(`max_staleness: 0`), the same run otherwise.

SmolLM2-135M as student and as its in-process teacher, instruction tasks (one turn), the
in-process hf rollout engine, float32 on this machine's CPU. Streaming overlaps step t's
update (in a worker thread) with step t+1's rollouts; the on-policy loop runs them one after
the other. Each setting runs in a fresh subprocess, in the order on-policy, streamed,
on-policy, streamed; each runs `--steps` steps and the first is left out of the timing (its
rollouts cannot overlap anything). Prints a table and writes bench/results/opd_streaming.json.

    python bench/opd_streaming.py [--steps 5] [--prompts 8] [--max-tokens 48] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import run_child, write_result

SETTINGS = {"on-policy": 0, "streamed": 1}
PHASES = ("rollout", "score", "train", "overlap_wait")


def child(spec: dict[str, Any]) -> dict[str, Any]:
    from longhorizon.core import TaskStore
    from longhorizon.distill.config import DistillConfig
    from longhorizon.distill.opd import run_distill
    from longhorizon.domains import verify
    from longhorizon.domains.instruction.tasks import propose_instruction_tasks
    from longhorizon.training.metrics import read_metrics

    root = Path(spec["dir"])
    with TaskStore(root / "tasks") as store:
        for task in propose_instruction_tasks(32, seed=0):
            store.add(task)
    rollout = {
        "prompts_per_step": spec["prompts"],
        "max_turns": 1,
        "max_tokens": spec["max_tokens"],
        "concurrency": spec["prompts"],
        "max_staleness": spec["staleness"],
    }
    config = DistillConfig.model_validate(
        {
            "model": "smollm2-135m",
            "teachers": [{"domain": "instruction", "model": "smollm2-135m"}],
            "tasks": [str(root / "tasks")],
            "output_dir": str(root / "run"),
            "steps": spec["steps"],
            "lr": 1e-5,
            "micro_batch_size": 4,
            "loss": {"k": 16},
            "rollout": rollout,
            "tensorboard": False,
            "num_threads": spec["threads"],
            "save_every": 1000,  # no checkpoint inside the timed steps
        }
    )
    run_distill(config, verify)
    records = read_metrics(root / "run")[1:]  # the first step overlaps nothing
    return {
        "step_seconds": statistics.mean(r["seconds"] for r in records),
        "phases": {
            p: statistics.mean(r["phase_seconds"].get(p, 0.0) for r in records) for p in PHASES
        },
        "steps_timed": len(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in SETTINGS}
    for name in [*SETTINGS] * 2:  # A B A B, each in a fresh process
        with tempfile.TemporaryDirectory() as tmp:
            spec = {
                "dir": tmp,
                "staleness": SETTINGS[name],
                "steps": args.steps,
                "prompts": args.prompts,
                "max_tokens": args.max_tokens,
                "threads": args.threads,
            }
            result = run_child(__file__, spec, timeout_s=1800)
        if "error" in result:
            sys.exit(f"{name}: {result['error']}")
        runs[name].append(result)
        print(f"{name}: {result['step_seconds']:.2f} s a step", flush=True)
    summary = {
        name: {
            "step_seconds": statistics.mean(r["step_seconds"] for r in rs),
            "phases": {p: statistics.mean(r["phases"][p] for r in rs) for p in PHASES},
        }
        for name, rs in runs.items()
    }
    speedup = summary["on-policy"]["step_seconds"] / summary["streamed"]["step_seconds"]
    print(f"\n{'setting':<10} {'step s':>8} " + " ".join(f"{p:>13}" for p in PHASES))
    for name, s in summary.items():
        phases = " ".join(f"{s['phases'][p]:>13.2f}" for p in PHASES)
        print(f"{name:<10} {s['step_seconds']:>8.2f} {phases}")
    print(f"streamed is {speedup:.2f}x the on-policy loop's steps per second")
    write_result(
        "opd_streaming",
        {
            "settings": vars(args) | {"child": None},
            "runs": runs,
            "summary": summary,
            "streamed_speedup": speedup,
        },
    )


if __name__ == "__main__":
    main()
