"""What a study writes: `results.json` (every cell and comparison), `table.txt`, `plot.png`.

Paths in the JSON are relative to the study folder, so the folder can move.
"""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from longhorizon.ablate.analysis import Comparison, StudyAnalysis
from longhorizon.ablate.plot import write_plot
from longhorizon.ablate.stats import Bootstrap
from longhorizon.ablate.table import AVERAGE, notes, study_table
from longhorizon.core.files import write_text_atomic
from longhorizon.core.provenance import code_version

__all__ = ["PLOT_FILE", "RESULTS_FILE", "TABLE_FILE", "results_json", "write_outputs"]

RESULTS_FILE = "results.json"
TABLE_FILE = "table.txt"
PLOT_FILE = "plot.png"
TABLE_WIDTH = 80  # the terminal's default: what a user sees


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def _boot(boot: Bootstrap, bench: int | None) -> dict[str, Any]:
    low, high = boot.interval(bench)
    return {
        "mean": boot.mean(bench),
        "low": low,
        "high": high,
        "per_seed": boot.seeds(bench).tolist(),
        "seed_sd": _num(boot.seed_sd(bench)),
    }


def _by_bench(boot: Bootstrap, benches: list[str]) -> dict[str, Any]:
    out = {b: _boot(boot, i) for i, b in enumerate(benches)}
    return out | {AVERAGE: _boot(boot, None)}


def _comparison(c: Comparison, benches: list[str]) -> dict[str, Any]:
    out = _by_bench(c.boot, benches)
    for i, b in enumerate(benches):
        out[b] |= {
            "p": c.boot.p_value(i),
            "significant": c.significant(i),
            "n_per_seed": [row[i] for row in c.items],
        }
    out[AVERAGE] |= {"p": c.boot.p_value(), "significant": c.significant(), "p_holm": c.p_holm}
    return out


def _rel(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def results_json(
    name: str, analysis: StudyAnalysis, root: Path, versions: list[str] | None = None
) -> dict[str, Any]:
    cells = []
    for c in analysis.cells:
        for bench in analysis.benches:
            est = c.estimate(bench)
            cells.append(
                {
                    "variant": c.cell.variant,
                    "seed": c.cell.seed,
                    "model": c.cell.model,
                    "bench": bench,
                    "mean": est.mean,
                    "low": est.low,
                    "high": est.high,
                    "n": est.n,
                    "cell_dir": _rel(c.cell.recipe.out, root),
                    "eval_dir": _rel(c.eval_dir, root),
                    "items": [_rel(p, root) for p in c.files[bench]],
                    "answered": c.answers[bench].answered,
                    "distinct_answers": c.answers[bench].distinct,
                    "top_answer_share": c.answers[bench].top_share,
                }
            )
    return {
        "study": name,
        "code_version": code_version(),  # the analysis; `stage_code_versions`: the runs
        "stage_code_versions": versions or [],
        "baseline": analysis.baseline,
        "seeds": analysis.seeds,
        "benches": analysis.benches,
        "cells": cells,
        "variants": {v: _by_bench(b, analysis.benches) for v, b in analysis.scores.items()},
        "comparisons": {c.variant: _comparison(c, analysis.benches) for c in analysis.comparisons},
        "notes": notes(analysis),
    }


def write_outputs(
    name: str,
    analysis: StudyAnalysis,
    root: Path,
    console: Console,
    versions: list[str] | None = None,
) -> Path:
    """Print the table and notes; write them, the plot and the JSON under `root`."""
    models = sorted({c.cell.model for c in analysis.cells})
    table = study_table(name, "scores of " + "/".join(models), analysis)
    recorder = Console(record=True, width=TABLE_WIDTH, file=io.StringIO())
    for target in (console, recorder):
        target.print(table)
        for line in notes(analysis):
            target.print(line, soft_wrap=True)
    write_text_atomic(root / TABLE_FILE, recorder.export_text())
    tmp = root / f".{PLOT_FILE}.{os.getpid()}.tmp"
    os.replace(write_plot(name, analysis, tmp), root / PLOT_FILE)
    payload = json.dumps(results_json(name, analysis, root, versions), indent=2) + "\n"
    write_text_atomic(root / RESULTS_FILE, payload)
    console.print(f"study results: {root / RESULTS_FILE}  {root / TABLE_FILE}  {root / PLOT_FILE}")
    return root / RESULTS_FILE
