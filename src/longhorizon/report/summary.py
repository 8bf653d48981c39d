"""A run's results as one small committed artefact: `results/<recipe>-seed<S>-<commit>/`.

Every number the README quotes comes from such a folder (or `bench/results/*.json`): the
summary JSON holds the results table (each cell's mean, interval and item count), the paired
difference, stage timings and the code version that produced the run; `report.md` beside it
is the run's Markdown report, and `recipe.yaml` the resolved recipe that reruns it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from longhorizon.core.files import write_text_atomic
from longhorizon.core.provenance import code_version
from longhorizon.evaluation.stats import Estimate
from longhorizon.report.render import MARKDOWN_FILE, build_report
from longhorizon.report.results import AVERAGE, COLUMNS, ResultRow, ResultsTable

SUMMARY_FILE = "summary.json"


def _estimate(e: Estimate | None) -> dict[str, float | int] | None:
    return None if e is None else {"mean": e.mean, "low": e.low, "high": e.high, "n": e.n}


def _row(row: ResultRow) -> dict[str, Any]:
    return {
        "domain": row.domain,
        "bench": row.bench,
        "metric": row.metric,
        **{c: _estimate(row.cells[c]) for c in COLUMNS},
        "distilled_minus_sft": _estimate(row.diff),
        "benches": row.counts,
    }


def summarise(run_dir: Path, table: ResultsTable) -> dict[str, Any]:
    """Recipe, seed, code version, stage seconds and the results table of a pipeline run."""
    recipe = yaml.safe_load((run_dir / "recipe.yaml").read_text())
    stages = json.loads((run_dir / "stages.json").read_text())
    rows = [_row(r) for r in table.rows]
    if table.average is not None:
        rows.append(_row(table.average) | {"domain": AVERAGE})
    return {
        "recipe": recipe.get("name", run_dir.name),
        "seed": recipe.get("seed", 0),
        # The version that ran the stages (recorded by the pipeline), not the one saving them.
        "code_version": stages.get("code_version", code_version()),
        "stage_seconds": {k: v.get("seconds") for k, v in stages["stages"].items()},
        "results": rows,
    }


def results_name(summary: dict[str, Any]) -> str:
    commit = str(summary["code_version"]).rpartition("+g")[2] or "nocommit"
    return f"{summary['recipe']}-seed{summary['seed']}-{commit}"


def save_results(run_dir: Path, root: Path) -> Path:
    """Write ROOT/<recipe>-seed<S>-<commit>/ (summary, report and its plots, recipe) from a
    finished run."""
    md_path, _, _, table = build_report(run_dir)
    return save_built(run_dir, table, md_path, root)


def save_built(run_dir: Path, table: ResultsTable, md_path: Path, root: Path) -> Path:
    """`save_results` for a report already built (the CLI has just made it)."""
    summary = summarise(run_dir, table)
    folder = root / results_name(summary)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
    shutil.copyfile(md_path, folder / MARKDOWN_FILE)
    shutil.copyfile(run_dir / "recipe.yaml", folder / "recipe.yaml")  # how to rerun it
    plots = md_path.parent / "plots"
    if plots.is_dir():  # the markdown's images, so the saved report reads whole
        shutil.copytree(plots, folder / "plots", dirs_exist_ok=True)
    return folder


__all__ = ["SUMMARY_FILE", "results_name", "save_built", "save_results", "summarise"]
