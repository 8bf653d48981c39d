"""`longhorizon ablate`: run a study's grid, sharing every stage the variants do not change.

Layout of a study folder (`--out`, default `runs/ablate/<name>`):

    study.yaml                     the study as given (`recipe.yaml` of each cell beside it)
    cache/<stage>-<key>/           one folder per distinct stage config (keys.py), shared
    cache/<stage>-<key>/study-stage.json   written (atomically) when that stage finished
    cells/<variant>/seed<S>/       the cell's recipe.yaml and cell.json (its keys)
    stages.jsonl                   one line per stage actually run: stage, key, cell, seconds
    results.json, table.txt, plot.png

A cell runs the training stages its evaluated model needs, then that evaluation; each is
skipped when its folder's record exists. A killed study resumes: finished stages are skipped,
the interrupted one resumes from its own state (SFT and teachers from their checkpoints,
synthesis and evaluation from what is stored, OPD from its checkpoint). Test hook:
LONGHORIZON_ABLATE_KILL_AFTER=N SIGKILLs the process after the N-th stage it ran.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from longhorizon.ablate.analysis import StudyAnalysis, analyse, check_mean_scored, read_cell
from longhorizon.ablate.keys import CellKeys, cell_keys, cell_plan, stages_needed
from longhorizon.ablate.results import write_outputs
from longhorizon.ablate.reuse import Reusable, reusable_stages
from longhorizon.ablate.study import Cell, Study, StudyError, resolve_cells
from longhorizon.core.files import write_text_atomic
from longhorizon.core.logs import send_third_party_to
from longhorizon.core.provenance import code_version
from longhorizon.pipeline.run import (
    benches_for,
    eval_model,
    run_distill_stage,
    run_sft_stage,
    run_synth,
    run_teachers,
    student_checkpoint,
)
from longhorizon.pipeline.stages import Plan, plan

__all__ = [
    "KILL_ENV",
    "STAGE_RECORD",
    "PlannedCell",
    "plan_study",
    "print_grid",
    "reuse_matches",
    "run_study",
]

KILL_ENV = "LONGHORIZON_ABLATE_KILL_AFTER"
STAGE_RECORD = "study-stage.json"
LEDGER = "stages.jsonl"
STEPS: dict[str, Callable[[Plan], None]] = {
    "synth": run_synth,
    "sft": run_sft_stage,
    "teachers": run_teachers,
    "distill": run_distill_stage,
}


@dataclass(frozen=True)
class PlannedCell:
    cell: Cell
    keys: CellKeys

    def jobs(self) -> list[tuple[str, str]]:
        """(stage, key) in run order: the training stages the model needs, then its eval."""
        stages = [(s, self.keys.stages[s]) for s in stages_needed(self.cell.model)]
        return [*stages, ("eval", self.keys.evals[self.cell.model])]


def plan_study(study: Study, base: dict[str, Any]) -> tuple[list[PlannedCell], list[str]]:
    """Resolve and validate the whole grid (no model loaded, nothing written): every cell's
    stage keys and the benches it scores. StudyError names every problem found."""
    planned, problems = [], []
    for cell in resolve_cells(study, base):
        try:
            planned.append(PlannedCell(cell, cell_keys(cell.recipe)))
            _check_model(cell)
        except (ValueError, KeyError) as exc:
            problems.append(f"variant {cell.variant!r} (seed {cell.seed}): {_line(exc)}")
    if problems:
        raise StudyError("\n".join(dict.fromkeys(problems)))
    benches = _common_benches(planned)
    _check_distinct(planned)
    return planned, benches


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _check_model(cell: Cell) -> None:
    models = plan(cell.recipe, cell.recipe.student.name()).models()
    if cell.model not in models:
        raise ValueError(f"model {cell.model!r} is not one of the recipe's: {list(models)}")


def _benches(cell: Cell) -> list[str]:
    return benches_for(plan(cell.recipe, cell.recipe.student.name()), cell.model)


def _common_benches(planned: list[PlannedCell]) -> list[str]:
    first = _benches(planned[0].cell)
    common = [b for b in first if all(b in _benches(p.cell) for p in planned)]
    if not common:
        raise StudyError("the variants' models share no bench to compare on")
    for bench in common:
        try:
            check_mean_scored(bench)
        except ValueError as exc:
            raise StudyError(str(exc)) from None
    return common


def _check_distinct(planned: list[PlannedCell]) -> None:
    """Two variants that evaluate the same thing would compare a run with itself."""
    seen: dict[tuple[int, str], str] = {}
    for p in planned:
        key = (p.cell.seed, p.keys.evals[p.cell.model])
        if key in seen:
            raise StudyError(
                f"variants {seen[key]!r} and {p.cell.variant!r} resolve to the same evaluated "
                f"model and configuration ({key[1]}, seed {p.cell.seed}): the study would "
                "compare a run with itself; make their overrides differ"
            )
        seen[key] = p.cell.variant


def print_grid(planned: list[PlannedCell], out: Path, console: Console) -> None:
    """Each cell's jobs: new, shared with an earlier cell, or done in an earlier run."""
    table = Table(title=f"study grid -> {out}")
    for column in ("cell", "model", "stages (+ runs here, = shared, done: finished before)"):
        table.add_column(column)
    seen: set[str] = set()
    for p in planned:
        marks = []
        for _, key in p.jobs():
            done = (out / "cache" / key / STAGE_RECORD).exists()
            mark = "done" if done else ("=" if key in seen else "+")
            marks.append(f"{mark}{key}")
            seen.add(key)
        table.add_row(p.cell.name, p.cell.model, " ".join(marks))
    console.print(table)
    total = sum(len(p.jobs()) for p in planned)
    console.print(f"{len(planned)} cells; {len(seen)} distinct stage runs of {total} (shared)")


class Ledger:
    """Which shared stages finished (a record in each stage folder) and the log of runs."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.ran = 0

    def done(self, key: str) -> bool:
        return (self.out / "cache" / key / STAGE_RECORD).exists()

    def run(self, stage: str, key: str, cell: Cell, step: Callable[[], None]) -> None:
        start = time.perf_counter()
        step()
        seconds = round(time.perf_counter() - start, 1)
        record = {"stage": stage, "key": key, "cell": cell.name, "seconds": seconds}
        record["code_version"] = code_version()
        self._finish(key, record)

    def adopt(self, stage: Reusable) -> None:
        """A finished stage of a `longhorizon run` copied in (`--reuse`) instead of run."""
        self._finish(stage.key, stage.copy_into(self.out / "cache"))

    def _finish(self, key: str, record: dict[str, Any]) -> None:
        write_text_atomic(self.out / "cache" / key / STAGE_RECORD, json.dumps(record) + "\n")
        _append_line(self.out / LEDGER, json.dumps(record))
        self.ran += 1
        if os.environ.get(KILL_ENV) == str(self.ran):
            os.kill(os.getpid(), signal.SIGKILL)


def _append_line(path: Path, line: str) -> None:
    """One write of a whole line, fsynced: a kill leaves complete lines only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def run_study(
    study: Study, base: dict[str, Any], console: Console, reuse: tuple[Path, ...] = ()
) -> tuple[StudyAnalysis, Path]:
    """Run (or resume) every cell, then analyse and write the outputs. `reuse`: finished
    `longhorizon run` folders whose matching stages are copied in instead of run."""
    planned, benches = plan_study(study, base)
    matches = reuse_matches(reuse, planned)  # before writing anything: a bad folder fails
    out = study.out_dir()
    out.mkdir(parents=True, exist_ok=True)
    send_third_party_to(out / "run.log")
    write_text_atomic(out / "study.yaml", yaml.safe_dump(study.model_dump(mode="json")))
    ledger = Ledger(out)
    for stage in matches:
        if not ledger.done(stage.key):
            console.print(f"[bold]reuse[/bold] {stage.key} <- {stage.source}")
            ledger.adopt(stage)
    print_grid(planned, out, console)
    for i, p in enumerate(planned, start=1):
        console.rule(f"cell {i}/{len(planned)}: {p.cell.name} ({p.cell.model})")
        _run_cell(p, out, ledger, console)
    cells = [
        read_cell(p.cell, out / "cache" / p.keys.evals[p.cell.model], benches) for p in planned
    ]
    analysis = analyse(cells, study.baseline_name, benches)
    versions = stage_versions(out, planned)
    return analysis, write_outputs(study.name, analysis, out, console, versions)


def reuse_matches(runs: tuple[Path, ...], planned: list[PlannedCell]) -> list[Reusable]:
    """The finished stages of `runs` that some cell of the study needs (first run wins)."""
    wanted = {key for p in planned for _, key in p.jobs()}
    found: dict[str, Reusable] = {}
    for run in runs:
        try:
            stages = reusable_stages(run)
        except ValueError as exc:
            raise StudyError(f"--reuse {exc}") from None
        for stage in stages:
            if stage.key in wanted:
                found.setdefault(stage.key, stage)
    return list(found.values())


def stage_versions(out: Path, planned: list[PlannedCell]) -> list[str]:
    """The code versions that ran the stages behind the results (a resumed study may mix)."""
    records = {key for p in planned for _, key in p.jobs()}
    paths = [out / "cache" / key / STAGE_RECORD for key in sorted(records)]
    return sorted({json.loads(p.read_text())["code_version"] for p in paths})


def _run_cell(p: PlannedCell, out: Path, ledger: Ledger, console: Console) -> None:
    cell = p.cell
    the_plan = cell_plan(cell.recipe, student_checkpoint(cell.recipe), p.keys, out / "cache")
    cell_dir = cell.recipe.out
    cell_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(cell_dir / "recipe.yaml", yaml.safe_dump(cell.recipe.model_dump(mode="json")))
    record = {"variant": cell.variant, "seed": cell.seed, "model": cell.model, "jobs": p.jobs()}
    write_text_atomic(cell_dir / "cell.json", json.dumps(record, indent=2) + "\n")
    for stage, key in p.jobs():
        if ledger.done(key):
            console.print(f"[dim]{stage} {key}: done earlier, shared[/dim]")
            continue
        console.print(f"[bold]{stage}[/bold] {key}")
        step = (
            partial(eval_model, the_plan, cell.model)
            if stage == "eval"
            else partial(STEPS[stage], the_plan)
        )
        ledger.run(stage, key, cell, step)
