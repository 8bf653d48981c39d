"""What a run directory holds, found by walking it once: stores, synthesis, evaluation, OPD.

The layout is the pipeline's (`longhorizon run`): synth/<domain>/{tasks,trajectories,kag.db},
distill/{rollouts,token_monitors.jsonl,metrics.jsonl}, eval/<stage>/<bench>/items-seed<k>.jsonl
with trajectories-seed<k>/, report/report.html. A store found anywhere else is listed as
"other", so runs of single commands (`longhorizon rollout --out D`) open too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["EvalBench", "RunLayout", "StoreInfo", "discover"]

SHARD = re.compile(r"^part-.*\.jsonl$")
# Folders that hold no stores and can be large (model weights, sandboxes, corpora).
SKIP = {"checkpoints", "tensorboard", "workdirs", "teacher_cache", "plots", "final", "corpus"}
EVAL_STORE = re.compile(r"^eval/([^/]+)/([^/]+)/trajectories-seed(\d+)$")


@dataclass(frozen=True)
class StoreInfo:
    """One JSONL store: its run-relative name and where it sits in the pipeline."""

    ref: str
    kind: str  # "tasks" or "trajectories"
    stage: str  # synth, distill, eval/<label>, rl, or other
    split: str  # train (synthesis), opd (rollouts), held-out (evaluation), other
    domain: str | None = None
    bench: str | None = None
    seed: int | None = None

    @property
    def label(self) -> str:
        where = self.bench or self.domain or ""
        seed = "" if self.seed is None else f" seed {self.seed}"
        return f"{self.stage} · {where}{seed}".rstrip(" ·")


@dataclass(frozen=True)
class EvalBench:
    """eval/<stage>/<bench>: per-seed item files (and trajectories) of one model on one bench."""

    stage: str
    bench: str
    ref: str
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class RunLayout:
    stores: tuple[StoreInfo, ...]
    evals: tuple[EvalBench, ...]
    synth_domains: tuple[str, ...]  # synth/<domain> folders holding a kag.db
    has_monitors: bool  # distill/token_monitors.jsonl
    has_report: bool

    def trajectory_stores(self) -> list[StoreInfo]:
        return [s for s in self.stores if s.kind == "trajectories"]

    def store(self, ref: str) -> StoreInfo | None:
        return next((s for s in self.stores if s.ref == ref), None)


def _classify(ref: str) -> StoreInfo:
    parts = ref.split("/")
    kind = "tasks" if parts[-1] == "tasks" else "trajectories"
    if len(parts) == 3 and parts[0] == "synth":
        return StoreInfo(ref, kind, "synth", "train", domain=parts[1])
    if ref == "distill/rollouts":
        return StoreInfo(ref, kind, "distill", "opd")
    match = EVAL_STORE.match(ref)
    if match:
        stage, bench, seed = match.groups()
        return StoreInfo(ref, kind, f"eval/{stage}", "held-out", bench=bench, seed=int(seed))
    if parts[0] == "rl":
        return StoreInfo(ref, kind, "rl", "rl")
    return StoreInfo(ref, kind, "other", "other")


def _is_store(filenames: list[str]) -> bool:
    return any(SHARD.match(f) for f in filenames)


def discover(root: Path) -> RunLayout:
    """One walk over the run (pruning weight and sandbox folders)."""
    stores: list[StoreInfo] = []
    evals: list[EvalBench] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        ref = here.relative_to(root).as_posix()
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP and not d.startswith("world-"))
        if _is_store(filenames):
            stores.append(_classify(ref))
            dirnames[:] = []
            continue
        seeds = sorted(int(m.group(1)) for f in filenames if (m := _ITEMS.match(f)))
        parts = ref.split("/")
        if seeds and len(parts) == 3 and parts[0] == "eval":
            evals.append(EvalBench(parts[1], parts[2], ref, tuple(seeds)))
    synth = root / "synth"
    domains = (
        sorted(p.name for p in synth.iterdir() if (p / "kag.db").exists()) if synth.is_dir() else []
    )
    return RunLayout(
        stores=tuple(sorted(stores, key=lambda s: s.ref)),
        evals=tuple(sorted(evals, key=lambda e: (e.bench, e.stage))),
        synth_domains=tuple(domains),
        has_monitors=(root / "distill" / "token_monitors.jsonl").exists(),
        has_report=(root / "report" / "report.html").exists(),
    )


_ITEMS = re.compile(r"^items-seed(\d+)\.jsonl$")
