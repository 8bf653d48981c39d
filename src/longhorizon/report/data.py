"""Everything a run directory holds, loaded into typed records for the report.

Any part may be missing (a stage not run yet, a killed job) or unreadable: its field is then
None (or lacks that entry) and `RunData.notes` says what is missing and why, so the report can
show what exists instead of failing. Nothing here writes to the run directory.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from longhorizon.core.store import SHARD_GLOB
from longhorizon.core.trajectory import Trajectory
from longhorizon.evaluation.items import read_seeds
from longhorizon.evaluation.runner import load_results
from longhorizon.evaluation.types import BenchResult, ItemResult
from longhorizon.training.metrics import read_metrics
from longhorizon.training.teach import GENERALIST

# The model labels the pipeline evaluates, besides one `teacher-<domain>` per domain (or one
# `teacher-generalist` for them all).
CORE_LABELS = ("base", "sft", "distilled")
TEACHER_PREFIX = "teacher-"

T = TypeVar("T")
Record = dict[str, Any]
BySeed = dict[int, dict[str, ItemResult]]


@dataclass(frozen=True)
class StageInfo:
    """One pipeline stage from stages.json."""

    name: str
    done: bool
    seconds: float | None


@dataclass(frozen=True)
class TrajStats:
    """What the report needs of one synthesis trajectory (the trajectory itself is dropped)."""

    domain: str
    tokens: int  # training tokens: all token sequences, as in the synthesis report
    turns: int  # model calls
    tool_calls: dict[str, int]  # executed tool calls by tool name
    status: str
    passed: bool


@dataclass(frozen=True)
class SynthDomain:
    domain: str
    summary: Record | None  # synth_report.json (SynthReport.summary())
    trajectories: list[TrajStats] | None


@dataclass(frozen=True)
class TeacherStage:
    name: str
    records: list[Record]  # metrics.jsonl records, as read_metrics returns them

    @property
    def is_rl(self) -> bool:
        """A GRPO stage (its records carry rewards), not an SFT one."""
        return any("reward_mean" in r for r in self.records)

    def rl_series(self, metric: str) -> list[tuple[int, float]]:
        """(step, value) of a GRPO stage: `reward`, or `kl` / `clip` (low + high clip
        fraction), averaged over the step's domains (a teacher trains on its own one)."""
        points = []
        for r in self.records:
            if metric == "reward":
                value = r.get("reward_mean")
            else:
                keys = ("clip_low", "clip_high") if metric == "clip" else (metric,)
                per = [sum(m[k] for k in keys) for m in (r.get("domains") or {}).values()]
                value = sum(per) / len(per) if per else None
            if value is not None:
                points.append((int(r["step"]), float(value)))
        return points


@dataclass(frozen=True)
class DomainMetrics:
    loss: float | None
    kl: float | None
    coverage: float | None
    tokens: float | None


@dataclass(frozen=True)
class RolloutMetrics:
    episodes: float
    success: float
    truncation: float
    tool_calls: float


@dataclass(frozen=True)
class DistillStep:
    step: int
    loss: float | None
    domains: dict[str, DomainMetrics]
    rollouts: dict[str, RolloutMetrics]
    seconds: float | None


@dataclass(frozen=True)
class EvalBench:
    """One model's result on one bench, with its per-item scores by seed (may be empty)."""

    label: str
    bench: str
    result: BenchResult
    items: BySeed


@dataclass(frozen=True)
class ContaminationHit:
    item_id: str
    source: str
    shared_ngrams: int


@dataclass(frozen=True)
class Contamination:
    checked: int
    hits: list[ContaminationHit]


@dataclass
class RunData:
    run_dir: Path
    recipe: str | None = None
    stages: list[StageInfo] | None = None
    synth: dict[str, SynthDomain] | None = None
    sft: list[Record] | None = None
    teachers: dict[str, list[TeacherStage]] | None = None
    distill: list[DistillStep] | None = None
    evals: dict[str, dict[str, EvalBench]] | None = None  # label -> bench -> result
    contamination: Contamination | None = None
    notes: list[str] = field(default_factory=list)  # what is missing or unreadable, and why

    def eval_labels(self) -> list[str]:
        return sorted(self.evals or {})

    def synth_domains(self) -> list[str]:
        return sorted(self.synth or {})


def load_run(run_dir: Path) -> RunData:
    """Load every part of `run_dir`; a missing or broken part becomes None plus a note."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run directory {run_dir} does not exist")
    run = RunData(run_dir=run_dir)
    part = _Loader(run_dir, run.notes).part
    run.recipe = part("recipe.yaml", "recipe", _read_text)
    run.stages = part("stages.json", "stage log", _load_stages)
    run.synth = part("synth", "synthesis", lambda p: _load_synth(p, part))
    run.sft = part("sft/metrics.jsonl", "SFT curve", _load_metrics)
    run.teachers = part("teachers", "teacher curves", _load_teachers)
    run.distill = part("distill/metrics.jsonl", "distillation (OPD) curve", _load_distill)
    run.evals = part("eval", "evaluation", lambda p: _load_evals(p, part))
    run.contamination = part("eval/contamination.json", "contamination audit", _load_contamination)
    _note_missing_labels(run)
    return run


class _Loader:
    """Loads parts relative to the run directory and collects a note for each one missing."""

    def __init__(self, run_dir: Path, notes: list[str]) -> None:
        self.run_dir = run_dir
        self.notes = notes

    def part(self, rel: str, what: str, load: Callable[[Path], T | None]) -> T | None:
        """`load(RUN/rel)`, or None with a note when it is absent, empty or unreadable."""
        path = self.run_dir / rel
        if not path.exists():
            self.notes.append(f"{what}: missing ({rel})")
            return None
        try:
            value = load(path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # A broken file must not hide the rest of the report; say what broke instead.
            self.notes.append(f"{what}: unreadable ({rel}: {type(exc).__name__}: {exc})")
            return None
        if value is None or (isinstance(value, list | dict | str) and not value):
            self.notes.append(f"{what}: missing (nothing in {rel})")
            return None
        return value


Part = Callable[[str, str, Callable[[Path], Any]], Any]


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _load_stages(path: Path) -> list[StageInfo]:
    stages = json.loads(path.read_text(encoding="utf-8"))["stages"]
    return [
        StageInfo(
            name=name,
            done=bool(info.get("done", False)),
            seconds=None if info.get("seconds") is None else float(info["seconds"]),
        )
        for name, info in stages.items()
    ]


def _load_metrics(path: Path) -> list[Record]:
    return read_metrics(path.parent)


# ---- synthesis ---------------------------------------------------------------------------
def _load_synth(root: Path, part: Part) -> dict[str, SynthDomain]:
    out: dict[str, SynthDomain] = {}
    for domain_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        d = domain_dir.name
        summary = part(f"synth/{d}/synth_report.json", f"synthesis report ({d})", _load_json)
        trajs = part(f"synth/{d}/trajectories", f"synthesis trajectories ({d})", _traj_stats)
        out[d] = SynthDomain(d, summary, trajs)
    return out


def _load_json(path: Path) -> Record:
    return json.loads(path.read_text(encoding="utf-8"))


def _traj_stats(root: Path) -> list[TrajStats]:
    return [_stats_of(t) for t in iter_trajectories(root)]


def iter_trajectories(root: Path) -> Iterator[Trajectory]:
    """The trajectories of a TrajectoryStore directory, read-only and in one pass.

    Opening a TrajectoryStore would repair torn tails (a write) and read every shard twice
    (once for its id set); the report only reads, so it parses the shards itself with the
    store's rules: a line without its newline is torn and skipped, an id counts once.
    """
    seen: set[str] = set()
    for shard in sorted(root.glob(SHARD_GLOB)):
        data = shard.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            if not line.strip():
                continue
            traj = Trajectory.model_validate_json(line)
            if traj.id not in seen:
                seen.add(traj.id)
                yield traj


def _stats_of(traj: Trajectory) -> TrajStats:
    tools = Counter(step.action.function.name for step in traj.steps)
    return TrajStats(
        domain=traj.domain,
        tokens=sum(len(s) for s in traj.token_sequences()),
        turns=traj.usage.model_calls,
        tool_calls=dict(tools),
        status=traj.status.value,
        passed=traj.passed,
    )


# ---- training ----------------------------------------------------------------------------
_STAGE_INDEX = re.compile(r"stage-(\d+)")


def _stage_key(path: Path) -> tuple[int, str]:
    # Numeric order: stage-10 comes after stage-2.
    match = _STAGE_INDEX.match(path.name)
    return (int(match.group(1)) if match else 1 << 30, path.name)


def _load_teachers(root: Path) -> dict[str, list[TeacherStage]]:
    out: dict[str, list[TeacherStage]] = {}
    for domain_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        stages = sorted(domain_dir.glob("stage-*"), key=_stage_key)
        curves = [TeacherStage(s.name, read_metrics(s)) for s in stages if s.is_dir()]
        if curves:
            out[domain_dir.name] = curves
    return out


def _load_distill(path: Path) -> list[DistillStep]:
    return [_distill_step(r) for r in read_metrics(path.parent)]


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def _distill_step(record: Record) -> DistillStep:
    domains = {
        d: DomainMetrics(
            _opt(m.get("loss")), _opt(m.get("kl")), _opt(m.get("coverage")), _opt(m.get("tokens"))
        )
        for d, m in (record.get("domains") or {}).items()
    }
    rollouts = {
        d: RolloutMetrics(
            float(r.get("episodes", 0.0)),
            float(r.get("success", 0.0)),
            float(r.get("truncation", 0.0)),
            float(r.get("tool_calls", 0.0)),
        )
        for d, r in (record.get("rollouts") or {}).items()
    }
    return DistillStep(
        step=int(record["step"]),
        loss=_opt(record.get("loss")),
        domains=domains,
        rollouts=rollouts,
        seconds=_opt(record.get("seconds")),
    )


# ---- evaluation --------------------------------------------------------------------------
def _load_evals(root: Path, part: Part) -> dict[str, dict[str, EvalBench]]:
    out: dict[str, dict[str, EvalBench]] = {}
    for label_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = label_dir.name
        results = part(f"eval/{label}", f"evaluation of {label}", load_results)
        if results:
            out[label] = {
                bench: EvalBench(label, bench, result, read_seeds(label_dir / bench))
                for bench, result in results.items()
            }
    return out


def _load_contamination(path: Path) -> Contamination:
    data = _load_json(path)
    hits = [
        ContaminationHit(str(h["item_id"]), str(h["source"]), int(h["shared_ngrams"]))
        for h in data.get("hits", [])
    ]
    return Contamination(checked=int(data.get("checked", 0)), hits=hits)


def _note_missing_labels(run: RunData) -> None:
    """Name every expected evaluation that is absent: base, sft, distilled, one per teacher."""
    if run.evals is None:
        return  # already noted as a whole
    expected = list(CORE_LABELS)
    domains = set(run.synth_domains()) | set(run.teachers or {})
    if GENERALIST in (run.teachers or {}):  # one teacher for every domain
        domains = {GENERALIST}
    expected += [f"{TEACHER_PREFIX}{d}" for d in sorted(domains)]
    for label in expected:
        if label not in run.evals and not (run.run_dir / "eval" / label).exists():
            run.notes.append(f"evaluation of {label}: missing (eval/{label})")
