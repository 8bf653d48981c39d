"""The study's figure: scores per variant (top) and differences from the baseline (bottom),
per bench and on average, with 95% intervals; drawn as the run report draws (`report.plots`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from longhorizon.ablate.analysis import StudyAnalysis
from longhorizon.ablate.stats import Bootstrap
from longhorizon.ablate.table import rows, short
from longhorizon.report.plots import save

__all__ = ["study_figure", "write_plot"]


def _panel(
    ax: Axes,
    series: dict[str, Bootstrap],
    columns: list[tuple[str, int | None]],
    colors: dict[str, str],
    zero: bool,
) -> None:
    x = np.arange(len(columns))
    width = 0.8 / max(1, len(series))
    for k, (name, boot) in enumerate(series.items()):
        means = np.array([boot.mean(b) for _, b in columns])
        bounds = np.array([boot.interval(b) for _, b in columns])
        errors = np.abs(bounds.T - means)
        offset = (k - (len(series) - 1) / 2) * width
        ax.errorbar(
            x + offset, means, yerr=errors, fmt="o", capsize=3, label=name, color=colors[name]
        )
    if zero:
        ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(x, [short(label) for label, _ in columns])
    ax.legend(fontsize="small")


def study_figure(name: str, analysis: StudyAnalysis) -> Figure:
    columns = rows(analysis)
    colors = {v: f"C{i % 10}" for i, v in enumerate(analysis.variants)}  # same in both panels
    figure = Figure(figsize=(max(6.0, 1.8 * len(columns) + 3), 7.0), layout="constrained")
    top, bottom = figure.subplots(2, 1)
    _panel(top, analysis.scores, columns, colors, zero=False)
    top.set_ylabel("held-out score")
    top.set_title(f"{name}: scores ({len(analysis.seeds)} seed(s), 95% interval)")
    diffs = {c.variant: c.boot for c in analysis.comparisons}
    _panel(bottom, diffs, columns, colors, zero=True)
    bottom.set_ylabel(f"difference vs {analysis.baseline}")
    bottom.set_title("paired difference (seeds x items bootstrap, 95% interval)")
    return figure


def write_plot(name: str, analysis: StudyAnalysis, path: Path) -> Path:
    with style.context("default"):
        return save(study_figure(name, analysis), path)
