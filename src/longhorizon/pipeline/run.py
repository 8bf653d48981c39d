"""`longhorizon run`: synth -> SFT -> teachers -> OPD-SVA -> eval -> report, cached per stage.

Each stage records itself in RUN/stages.json when it finishes; a rerun skips finished stages,
and an interrupted one resumes from its own state (synthesis skips judged tasks, SFT and
teacher runs resume from their latest checkpoint, evaluation skips scored items).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from longhorizon.core.files import write_text_atomic
from longhorizon.core.logs import send_third_party_to
from longhorizon.core.provenance import code_version
from longhorizon.domains import registry, synthesize
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.tables import horizon_table
from longhorizon.evaluation.types import BenchResult
from longhorizon.pipeline.launch import DISTRIBUTED_STAGES, RECIPE_FILE, launch_stage
from longhorizon.pipeline.recipe import Recipe, token_warnings
from longhorizon.pipeline.stages import Plan, plan
from longhorizon.synthesis import print_report

console = Console()
STAGES = ("synth", "sft", "teachers", "distill", "eval", "report")


def student_checkpoint(recipe: Recipe) -> str:
    """Build a tiny student from its config (once), or resolve the named model."""
    from longhorizon.models.registry import resolve_model
    from longhorizon.models.tiny import tiny_checkpoint

    if recipe.student.tiny is not None:
        return str(tiny_checkpoint(recipe.student.tiny))
    return resolve_model(recipe.student.name())


class StageLog:
    """RUN/stages.json: which stages finished, and how long each took."""

    def __init__(self, out: Path) -> None:
        self.path = out / "stages.json"
        self.data: dict[str, Any] = (
            json.loads(self.path.read_text()) if self.path.exists() else {"stages": {}}
        )

    def done(self, stage: str) -> bool:
        return bool(self.data["stages"].get(stage, {}).get("done"))

    def finish(self, stage: str, seconds: float) -> None:
        self.data["stages"][stage] = {"done": True, "seconds": round(seconds, 1)}
        # The code that produced the run's numbers; results/ folders are named by it.
        self.data["code_version"] = code_version()
        write_text_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def run_pipeline(recipe: Recipe) -> Path:
    out = recipe.out
    plan(recipe, recipe.student.name())  # every stage config validates before anything is written
    out.mkdir(parents=True, exist_ok=True)
    send_third_party_to(out / "run.log")  # library bars and warnings: the log, not the terminal
    (out / RECIPE_FILE).write_text(  # what torchrun'd stages rebuild the plan from
        yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
    )
    the_plan = plan(recipe, student_checkpoint(recipe))
    for warning in token_warnings(recipe):
        console.print(f"[yellow]budget: {warning}[/yellow]")
    log = StageLog(out)
    processes = recipe.launch.nproc_per_node
    for i, stage in enumerate(STAGES, start=1):
        if log.done(stage):
            console.print(f"[dim]stage {i}/{len(STAGES)} {stage}: done earlier, skipped[/dim]")
            continue
        on = f" ({processes} processes)" if processes > 1 and stage in DISTRIBUTED_STAGES else ""
        console.rule(f"stage {i}/{len(STAGES)}: {stage}{on}")
        start = time.perf_counter()
        if on:
            launch_stage(the_plan, stage)
        else:
            STAGE_STEPS[stage](the_plan)
        log.finish(stage, time.perf_counter() - start)
    print_results(the_plan)
    return out


def run_synth(p: Plan) -> None:
    for domain, cfg in p.synth.items():
        report = asyncio.run(
            synthesize(
                registry.get(domain),
                cfg.n,
                cfg.out,
                level=p.levels[domain],
                model=p.recipe.synth.solver,
                tokenizer=p.student,
                seed=cfg.seed,
                concurrency=cfg.concurrency,
            )
        )
        print_report(report, console)


def run_sft_stage(p: Plan) -> None:
    from longhorizon.training.sft import run_sft

    run_sft(p.sft, console)


def run_teachers(p: Plan) -> None:
    from longhorizon.pipeline.teachers import train_teacher

    for domain, cfg in p.teachers.items():
        train_teacher(cfg, p.teacher_grpo.get(domain), console)


def run_distill_stage(p: Plan) -> None:
    from longhorizon.distill.opd import run_distill
    from longhorizon.domains import verify

    if not (p.distill.final_path / "config.json").exists():
        run_distill(p.distill, verify, console)


def eval_options(p: Plan, bench: str, train_tasks: Path | None) -> EvalOptions:
    spec = p.recipe.eval
    domain = heldout_domain(p, bench)
    return EvalOptions(
        limit=spec.limits.get(bench, spec.limit),
        max_tokens=spec.domain_max_tokens.get(domain or "", spec.max_tokens),
        max_turns=spec.domain_max_turns.get(domain or "", spec.max_turns),
        batch_size=spec.batch_size,
        train_tasks=train_tasks,
        levels={d: level.model_dump(mode="json") for d, level in p.levels.items()},
        world_seed=p.recipe.seed,
        show_progress=True,
        judge=spec.judge,
        summariser=spec.summariser,
    )


def audit_training_data(p: Plan) -> None:
    """13-gram audit of every training trajectory against the evaluation sets."""
    from longhorizon.core import TrajectoryStore
    from longhorizon.core.benchmarks import benchmark_dir
    from longhorizon.synthesis.decontam import AUDIT_OFF, benchmark_index

    index = benchmark_index()  # raises when the benchmark folder is missing
    target = p.layout.eval / "contamination.json"
    if index is None:  # LONGHORIZON_BENCHMARKS=none: no file, so the report says "no audit"
        target.unlink(missing_ok=True)
        console.print(f"contamination audit: {AUDIT_OFF} (LONGHORIZON_BENCHMARKS=none)")
        return
    benchmarks = benchmark_dir()
    items = [
        (t.id, "\n".join(m.content or "" for m in t.messages))
        for cfg in p.synth.values()
        for t in TrajectoryStore(cfg.out / "trajectories")
    ]
    hits = index.audit(items)
    report = {"checked": len(items), "against": str(benchmarks), "hits": [vars(h) for h in hits]}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"contamination audit: {len(hits)} of {len(items)} training trajectories flagged")


def run_eval(p: Plan) -> None:
    audit_training_data(p)
    for label in p.models():
        eval_model(p, label)


def eval_model(p: Plan, label: str) -> None:
    """Evaluate one of the plan's models (`Plan.models()` label) on its benches."""
    from longhorizon.evaluation.runner import evaluate_model

    model = p.models()[label]
    for bench in benches_for(p, label):
        options = eval_options(p, bench, train_tasks(p, bench))
        out = p.eval_dir(label)
        asyncio.run(evaluate_model(model, [bench], p.recipe.eval.seeds, out, options))


def heldout_domain(p: Plan, bench: str) -> str | None:
    """The domain whose held-out split `bench` is (None for other benches)."""
    return next((d for d in p.synth if registry.get(d).bench == bench), None)


def train_tasks(p: Plan, bench: str) -> Path | None:
    """The task store a held-out bench is audited against (None for other benches)."""
    domain = heldout_domain(p, bench)
    return p.synth[domain].out / "tasks" if domain is not None else None


def benches_for(p: Plan, label: str) -> list[str]:
    """A teacher's benches are those of the domains it learnt (the generalist: every one)."""
    if label.startswith("teacher-"):
        teacher = p.teachers[label.removeprefix("teacher-")]
        return [registry.get(d).bench for d in teacher.trained_domains()]
    return p.recipe.benches()


def run_report(p: Plan) -> None:
    try:
        from longhorizon.report import write_report
    except ImportError:
        console.print("[yellow]report module not available: skipped[/yellow]")
        return
    md, html = write_report(p.out)
    console.print(f"report: {md}  {html}")


STAGE_STEPS: dict[str, Callable[[Plan], None]] = {
    "synth": run_synth,
    "sft": run_sft_stage,
    "teachers": run_teachers,
    "distill": run_distill_stage,
    "eval": run_eval,
    "report": run_report,
}


def print_results(p: Plan) -> None:
    """The results table: held-out scores per stage with 95% intervals, per domain and mean."""
    from longhorizon.evaluation.runner import load_results

    results = {label: load_results(p.eval_dir(label)) for label in p.models()}
    console.print(results_table(p.recipe.name, results, p.recipe.benches()))
    for bench in p.recipe.benches():
        by_stage = {label: r[bench] for label, r in results.items() if bench in r}
        table = horizon_table(f"{p.recipe.name} {bench}", by_stage)
        if table is not None:
            console.print(table)
    console.print(f"report: {p.out / 'report' / 'report.html'}")


def results_table(
    name: str, results: dict[str, dict[str, BenchResult]], benches: list[str]
) -> Table:
    """One row per (stage, bench) it was evaluated on, a section per stage: whole names at
    80 columns (a column per stage cut "teacher-instruction" to "teacher-i..." there)."""
    table = Table(title=f"{name}: held-out results (mean [95% CI])")
    table.add_column("stage", no_wrap=True)
    table.add_column("bench", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("95% CI", no_wrap=True)
    table.add_column("trunc", justify="right", no_wrap=True)
    for label, by_bench in results.items():
        scored = [b for b in benches if b in by_bench]
        for i, bench in enumerate(scored):
            result = by_bench[bench]
            est, trunc = result.pooled, f"{result.truncated_share():.0%}"
            first = label if i == 0 else ""
            ci = f"[{est.low:.3f}, {est.high:.3f}]"
            table.add_row(first, bench, f"{est.mean:.3f}", ci, trunc)
        if len(scored) > 1:
            table.add_row("", "average", _average(by_bench, benches), "", "")
        if not scored:
            table.add_row(label, "-", "-", "", "")
        table.add_section()
    return table


def _average(results: dict[str, BenchResult], benches: list[str]) -> str:
    """Mean over the benches a model was evaluated on (the report gives its interval)."""
    means = [results[b].pooled.mean for b in benches if b in results]
    return f"{sum(means) / len(means):.3f}" if means else "-"
