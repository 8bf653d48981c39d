"""The report's figures, as PNG files under RUN/report/plots/.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot: no global figure
state, no GUI backend picked up from the environment), under matplotlib's default style so a
user's matplotlibrc cannot change them, and saved without the software-version metadata, so
the same run directory gives byte-identical PNGs. A figure without data is not drawn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from matplotlib import style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from longhorizon.report.data import DistillStep, Record, RunData, TrajStats
from longhorizon.report.horizon import Curves, curves
from longhorizon.report.results import AVERAGE, COLUMN_TITLES, COLUMNS, ResultsTable

DPI = 100
Value = Callable[[DistillStep, str], float | None]  # a per-domain metric of one OPD step

# name -> caption; the order is the order of the report.
PLOTS = {
    "scores": "Scores per bench and stage (pooled mean, 95% interval)",
    "horizon": "The long-horizon curve: success by hop count per stage (95% interval)",
    "synth_lengths": "Synthesis trajectories: length in tokens and turns, per domain",
    "tool_usage": "Synthesis trajectories: tool calls per tool, per domain",
    "sft_loss": "SFT loss per step",
    "teacher_loss": "Teacher losses per step (stages in sequence)",
    "teacher_rl": "GRPO teachers per step: mean reward, KL to the reference, clip fraction",
    "opd_loss_kl": "OPD loss and KL per domain per step",
    "opd_coverage": "OPD student coverage of the teacher's top-k per domain per step",
    "opd_rollouts": "OPD rollout success and truncation per domain per step",
}


def make_plots(run: RunData, table: ResultsTable, out_dir: Path) -> dict[str, Path]:
    """Draw every figure the run has data for; returns name -> PNG path (report order)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.png"):  # a figure that lost its data must not linger
        stale.unlink()
    drawers: dict[str, Callable[[], Figure | None]] = {
        "scores": lambda: scores_figure(table),
        "horizon": lambda: horizon_figure(curves(run)),
        "synth_lengths": lambda: synth_lengths_figure(_trajectories(run)),
        "tool_usage": lambda: tool_usage_figure(_trajectories(run)),
        "sft_loss": lambda: sft_loss_figure(run.sft or []),
        "teacher_loss": lambda: teacher_loss_figure(run),
        "teacher_rl": lambda: teacher_rl_figure(run),
        "opd_loss_kl": lambda: opd_loss_kl_figure(run.distill or []),
        "opd_coverage": lambda: opd_coverage_figure(run.distill or []),
        "opd_rollouts": lambda: opd_rollouts_figure(run.distill or []),
    }
    written: dict[str, Path] = {}
    with style.context("default"):
        for name, draw in drawers.items():
            figure = draw()
            if figure is not None:
                written[name] = save(figure, out_dir / f"{name}.png")
    return written


def save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    # No "Software" entry: the PNG bytes then depend on the data only.
    figure.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _figure(n_panels: int = 1, width: float = 7.0) -> tuple[Figure, list[Axes]]:
    figure = Figure(figsize=(width, 3.6 * n_panels), layout="constrained")
    axes = figure.subplots(n_panels, 1, squeeze=False)[:, 0]
    return figure, list(axes)


def _trajectories(run: RunData) -> dict[str, list[TrajStats]]:
    return {d: s.trajectories for d, s in (run.synth or {}).items() if s.trajectories}


# ---- (a) scores --------------------------------------------------------------------------
def scores_figure(table: ResultsTable) -> Figure | None:
    rows = [*table.rows, *([table.average] if table.average is not None else [])]
    columns = [c for c in COLUMNS if any(r.cells[c] is not None for r in rows)]
    if not columns:
        return None
    labels = [AVERAGE if r.bench == "" else r.bench for r in rows]
    figure, (ax,) = _figure(width=max(7.0, 1.6 * len(rows)))
    width = 0.8 / len(columns)
    for j, column in enumerate(columns):
        x, mean, low, high = [], [], [], []
        for i, row in enumerate(rows):
            est = row.cells[column]
            if est is None or est.n == 0 or math.isnan(est.mean):
                continue
            x.append(i - 0.4 + width * (j + 0.5))
            mean.append(est.mean)
            # Percentile intervals may not contain a degenerate mean exactly: clip at 0.
            low.append(max(est.mean - est.low, 0.0))
            high.append(max(est.high - est.mean, 0.0))
        ax.bar(x, mean, width, yerr=[low, high], capsize=3, label=COLUMN_TITLES[column])
    ax.set_xticks(range(len(rows)), labels, rotation=15, ha="right")
    ax.set_ylabel("primary metric")
    ax.set_ylim(bottom=0)
    # Outside the axes: bars near 1.0 would hide under a legend inside.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


def horizon_figure(found: Curves) -> Figure | None:
    """A panel per bench: success against hop count, a line with error bars per stage."""
    if not found:
        return None
    figure, axes = _figure(len(found))
    for ax, (bench, by_stage) in zip(axes, found.items(), strict=True):
        for label, by_hops in by_stage.items():
            hops = sorted(h for h, e in by_hops.items() if e.n and not math.isnan(e.mean))
            mean = [by_hops[h].mean for h in hops]
            low = [max(by_hops[h].mean - by_hops[h].low, 0.0) for h in hops]
            high = [max(by_hops[h].high - by_hops[h].mean, 0.0) for h in hops]
            ax.errorbar(hops, mean, yerr=[low, high], marker="o", capsize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("hops (tool steps 2(h + 1))")
        ax.set_ylabel(f"{bench} success")
        ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return figure


# ---- (b) and (c) synthesis ---------------------------------------------------------------
def synth_lengths_figure(by_domain: dict[str, list[TrajStats]]) -> Figure | None:
    if not by_domain:
        return None
    figure, (ax_tokens, ax_turns) = _figure(2)
    tokens = {d: [t.tokens for t in ts] for d, ts in by_domain.items()}
    turns = {d: [t.turns for t in ts] for d, ts in by_domain.items()}
    _histograms(ax_tokens, tokens, _edges(tokens, integer=False), "tokens per trajectory")
    _histograms(ax_turns, turns, _edges(turns, integer=True), "turns (model calls)")
    ax_tokens.set_title("Synthesis trajectories per domain", fontsize="medium")
    return figure


def _edges(values: dict[str, list[int]], *, integer: bool) -> np.ndarray:
    """Bin edges shared by every domain, so their histograms compare bin for bin."""
    flat = np.array([v for vs in values.values() for v in vs], dtype=float)
    if integer:  # one bin per value, centred on it
        return np.arange(flat.min() - 0.5, flat.max() + 1.5, 1.0)
    return np.histogram_bin_edges(flat, bins=min(30, max(5, len(set(flat.tolist())))))


def _histograms(ax: Axes, values: dict[str, list[int]], edges: np.ndarray, xlabel: str) -> None:
    for domain in sorted(values):
        ax.hist(values[domain], bins=edges.tolist(), histtype="step", linewidth=1.5, label=domain)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("trajectories")
    ax.legend(fontsize="small")


def tool_usage_figure(by_domain: dict[str, list[TrajStats]]) -> Figure | None:
    counts = {d: _tool_counts(ts) for d, ts in by_domain.items()}
    tools = sorted({tool for c in counts.values() for tool in c})
    if not tools:
        return None
    domains = sorted(counts)
    figure, (ax,) = _figure(width=7.0)
    height = 0.8 / len(domains)
    for j, domain in enumerate(domains):
        y = [i - 0.4 + height * (j + 0.5) for i in range(len(tools))]
        ax.barh(y, [counts[domain].get(t, 0) for t in tools], height, label=domain)
    ax.set_yticks(range(len(tools)), tools)
    ax.invert_yaxis()  # alphabetical from the top
    ax.set_xlabel("tool calls")
    ax.legend(fontsize="small")
    ax.set_title("Synthesis tool calls per tool", fontsize="medium")
    return figure


def _tool_counts(trajectories: Sequence[TrajStats]) -> dict[str, int]:
    total: dict[str, int] = {}
    for t in trajectories:
        for tool, n in t.tool_calls.items():
            total[tool] = total.get(tool, 0) + n
    return total


# ---- (d) training curves -----------------------------------------------------------------
def sft_loss_figure(records: list[Record]) -> Figure | None:
    steps = [r for r in records if isinstance(r.get("loss"), int | float)]
    if not steps:
        return None
    figure, (ax,) = _figure()
    ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="all")
    domains = sorted({k for r in records for k in r if k.startswith("loss/")})
    for key in domains:  # per-domain token loss, logged when the data mixes domains
        points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), linewidth=1, label=key.removeprefix("loss/"))
    _curve_axes(ax, "loss")
    return figure


def teacher_loss_figure(run: RunData) -> Figure | None:
    teachers = run.teachers or {}
    if not any(s.records for stages in teachers.values() for s in stages):
        return None
    figure, (ax,) = _figure()
    for domain in sorted(teachers):
        offset = 0
        for stage in (s for s in teachers[domain] if not s.is_rl):  # GRPO: `teacher_rl`
            points = [(offset + r["step"], r["loss"]) for r in stage.records if "loss" in r]
            if points:
                ax.plot(*zip(*points, strict=True), label=f"{domain} {stage.name}")
                offset = max(p[0] for p in points)  # the next stage continues the x axis
    _curve_axes(ax, "loss")
    return figure


def teacher_rl_figure(run: RunData) -> Figure | None:
    """One line per GRPO teacher in each panel: reward, KL (k3) and clip fraction per step."""
    stages = [(d, s) for d, ss in sorted((run.teachers or {}).items()) for s in ss if s.is_rl]
    if not any(s.rl_series("reward") for _, s in stages):
        return None
    panels = [("mean reward", "reward"), ("KL to reference", "kl"), ("clip fraction", "clip")]
    figure, axes = _figure(len(panels))
    for ax, (ylabel, metric) in zip(axes, panels, strict=True):
        for domain, stage in stages:
            points = stage.rl_series(metric)
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", label=f"{domain} {stage.name}")
        _curve_axes(ax, ylabel)
    return figure


def _curve_axes(ax: Axes, ylabel: str) -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)


def _per_domain(ax: Axes, steps: list[DistillStep], value: Value) -> bool:
    """One line per domain of `value(step, domain)`; False when nothing was plotted."""
    domains = sorted({d for s in steps for d in (*s.domains, *s.rollouts)})
    drawn = False
    for domain in domains:
        points = [(s.step, v) for s in steps if (v := value(s, domain)) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=domain)
            drawn = True
    return drawn


def _domain_metric(name: str) -> Value:
    def value(step: DistillStep, domain: str) -> float | None:
        metrics = step.domains.get(domain)
        return None if metrics is None else getattr(metrics, name)

    return value


def _rollout_metric(name: str) -> Value:
    def value(step: DistillStep, domain: str) -> float | None:
        metrics = step.rollouts.get(domain)
        return None if metrics is None else getattr(metrics, name)

    return value


def _panels(steps: list[DistillStep], panels: list[tuple[str, Value]]) -> Figure | None:
    if not steps:
        return None
    figure, axes = _figure(len(panels))
    drawn = False
    for ax, (ylabel, value) in zip(axes, panels, strict=True):
        if _per_domain(ax, steps, value):
            drawn = True
            _curve_axes(ax, ylabel)
    return figure if drawn else None


def opd_loss_kl_figure(steps: list[DistillStep]) -> Figure | None:
    return _panels(steps, [("loss", _domain_metric("loss")), ("KL", _domain_metric("kl"))])


# ---- (e) and (f) OPD coverage and rollouts -----------------------------------------------
def opd_coverage_figure(steps: list[DistillStep]) -> Figure | None:
    return _panels(steps, [("coverage of teacher top-k", _domain_metric("coverage"))])


def opd_rollouts_figure(steps: list[DistillStep]) -> Figure | None:
    return _panels(
        steps,
        [
            ("rollout success", _rollout_metric("success")),
            ("truncation rate", _rollout_metric("truncation")),
        ],
    )
