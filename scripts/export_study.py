"""Copy a finished study into a results folder: its outputs, the per-item files its table is
computed from (at the paths results.json names), and each OPD cell's per-step log with a
summary of its rollouts. The study folder is only read.

    python scripts/export_study.py runs/ablate/loss results/loss-tiny-seed0-<commit>
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

OUTPUTS = ("table.txt", "results.json", "plot.png", "stages.jsonl", "study.yaml")


def opd_summary(metrics: Path) -> dict[str, Any]:
    """Loss and per-domain rollout success and truncation over an OPD run's steps."""
    rows = [json.loads(x) for x in metrics.read_text().splitlines()]
    rows = [r for r in rows if "rollouts" in r]
    domains: dict[str, Any] = {}
    for name in rows[0]["rollouts"]:
        per = [r["rollouts"][name] for r in rows if name in r["rollouts"]]
        episodes = sum(p["episodes"] for p in per)
        domains[name] = {
            "episodes": episodes,
            "success": sum(p["success"] * p["episodes"] for p in per) / episodes,
            "success_first10": sum(p["success"] for p in per[:10]) / len(per[:10]),
            "success_last10": sum(p["success"] for p in per[-10:]) / len(per[-10:]),
            "truncation": sum(p["truncation"] * p["episodes"] for p in per) / episodes,
        }
    return {
        "steps": len(rows),
        "loss_first10": sum(r["loss"] for r in rows[:10]) / len(rows[:10]),
        "loss_last10": sum(r["loss"] for r in rows[-10:]) / len(rows[-10:]),
        "rollouts": domains,
    }


def export(study: Path, dest: Path) -> None:
    """Only the cells results.json covers: a study folder may also cache other cells' stages
    (other seeds or variants run into the same `--out`)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in OUTPUTS:
        if name != "stages.jsonl":
            shutil.copy(study / name, dest / name)
    results = json.loads((study / "results.json").read_text())
    distills: dict[str, str] = {}  # variant-seedS -> its OPD stage's key
    keys: set[str] = set()
    for cell in results["cells"]:
        for item in cell["items"]:
            (dest / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(study / item, dest / item)
        jobs = dict(json.loads((study / cell["cell_dir"] / "cell.json").read_text())["jobs"])
        keys.update(jobs.values())
        if "distill" in jobs:
            distills[f"{cell['variant']}-seed{cell['seed']}"] = jobs["distill"]
    ledger = (study / "stages.jsonl").read_text().splitlines()
    kept = [line for line in ledger if json.loads(line)["key"] in keys]
    (dest / "stages.jsonl").write_text("".join(line + "\n" for line in kept))
    summary: dict[str, Any] = {}
    for cell, key in distills.items():
        metrics = study / "cache" / key / "metrics.jsonl"
        shutil.copy(metrics, dest / f"opd-metrics-{cell}.jsonl")
        summary[cell] = {"distill_key": key, **opd_summary(metrics)}
    (dest / "opd-summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
