"""The study's terminal table and the sentences under it (significance said in words)."""

from __future__ import annotations

import math

from rich import box
from rich.table import Table

from longhorizon.ablate.analysis import Comparison, StudyAnalysis
from longhorizon.ablate.stats import ALPHA, POWER, Bootstrap, minimum_detectable_effect

__all__ = ["AVERAGE", "notes", "rows", "short", "study_table"]

AVERAGE = "average"


def rows(analysis: StudyAnalysis) -> list[tuple[str, int | None]]:
    """(label, bench index) per row: each bench, then the average when there are several."""
    out: list[tuple[str, int | None]] = [(b, i) for i, b in enumerate(analysis.benches)]
    return [*out, (AVERAGE, None)] if len(out) > 1 else out


def _interval(boot: Bootstrap, bench: int | None, signed: bool = False) -> str:
    low, high = boot.interval(bench)
    mean = f"{boot.mean(bench):+.3f}" if signed else f"{boot.mean(bench):.3f}"
    return f"{mean} [{low:.3f}, {high:.3f}]"


def _sd(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def short(bench: str) -> str:
    """A held-out bench by its domain's name (the table must fit 80 columns)."""
    return bench.removesuffix("-heldout")


def study_table(name: str, model_note: str, analysis: StudyAnalysis) -> Table:
    """Per variant and bench: score, difference from the baseline, seed sd of the difference
    (of the score, for the baseline). Numbers fold, never get cut; the verdicts are in
    `notes`."""
    table = Table(
        title=f"{name}: held-out {model_note}, {len(analysis.seeds)} seed(s); "
        f"difference vs {analysis.baseline} (paired, 95% CI)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=0,
        show_edge=False,
    )
    table.add_column("variant", overflow="fold")
    table.add_column("bench", overflow="fold")
    table.add_column("score [95% CI]", overflow="fold")
    table.add_column("difference [95% CI]", overflow="fold")
    table.add_column("seed sd", justify="right", overflow="fold")
    compared = {c.variant: c for c in analysis.comparisons}
    for variant, boot in analysis.scores.items():
        c = compared.get(variant)
        for i, (label, bench) in enumerate(rows(analysis)):
            diff = _interval(c.boot, bench, signed=True) if c else "baseline"
            sd = (c.boot if c else boot).seed_sd(bench)
            first = variant if i == 0 else ""
            table.add_row(first, short(label), _interval(boot, bench), diff, _sd(sd))
        table.add_section()
    return table


def notes(analysis: StudyAnalysis) -> list[str]:
    """Sentences: each comparison's verdict, its seeds, Holm, and the MDE."""
    lines = [
        _verdict(analysis, c, label, bench)
        for c in analysis.comparisons
        for label, bench in rows(analysis)
    ]
    lines += [_seeds_line(analysis, c) for c in analysis.comparisons]
    lines += _collapse_lines(analysis)
    if len(analysis.seeds) == 1 and analysis.comparisons:
        lines.append(
            "One seed: the intervals resample held-out items only, so they leave out how much "
            "a retrained model varies between seeds; a difference that is significant here "
            "can still be one run's luck (run more seeds: --seeds)."
        )
    if len(analysis.comparisons) > 1:
        lines.append(_holm_line(analysis))
    lines.append(_mde_line(analysis))
    return lines


def _collapse_lines(analysis: StudyAnalysis) -> list[str]:
    """Cells whose model gives one answer to most items: a score that is not learning."""
    lines = []
    for c in analysis.cells:
        for bench, a in c.answers.items():
            if not a.collapsed:
                continue
            shown = a.top if len(a.top) <= 40 else a.top[:40] + "..."
            lines.append(
                f"{c.cell.name} gave one answer to {a.top_count} of {a.answered} answered items "
                f"of {bench} ({shown!r}; {a.distinct} distinct): a collapsed model, whose score "
                "is what that answer earns."
            )
    return lines


def _verdict(analysis: StudyAnalysis, c: Comparison, label: str, bench: int | None) -> str:
    low, high = c.boot.interval(bench)
    head = f"{c.variant} - {analysis.baseline} on {label}: {_interval(c.boot, bench, True)}"
    if low <= 0 <= high:
        return f"{head}: not significant (the 95% interval covers 0)."
    word = "higher" if low > 0 else "lower"
    if bench is None and c.p_holm is not None and c.p_holm >= ALPHA:
        return (
            f"{head}: {word} at the 95% level, but not significant after the Holm correction "
            f"(adjusted p = {c.p_holm:.3f})."
        )
    return f"{head}: significantly {word} (the 95% interval excludes 0)."


def _seeds_line(analysis: StudyAnalysis, c: Comparison) -> str:
    """How often the variant beats the baseline across seeds, and by how much."""
    per_seed = c.boot.seeds(None)
    wins = int((per_seed > 0).sum())
    shown = ", ".join(f"seed {s}: {d:+.3f}" for s, d in zip(analysis.seeds, per_seed, strict=True))
    sd = c.boot.seed_sd(None)
    spread = "" if math.isnan(sd) else f"; seed-level sd {sd:.3f}"
    return (
        f"{c.variant} beats {analysis.baseline} on average in {wins} of {len(per_seed)} seed(s) "
        f"({shown}){spread}."
    )


def _holm_line(analysis: StudyAnalysis) -> str:
    adjusted = ", ".join(f"{c.variant} {c.p_holm:.3f}" for c in analysis.comparisons)
    return (
        f"Multiple comparisons: {len(analysis.comparisons)} variants are compared with "
        f"{analysis.baseline}; Holm-adjusted p-values of the average (family-wise error "
        f"{ALPHA:g}): {adjusted}."
    )


def _mde_line(analysis: StudyAnalysis) -> str:
    items = analysis.comparisons[0].items if analysis.comparisons else [[0]]
    parts = [
        f"{label} {minimum_detectable_effect(items, bench):.3f}" for label, bench in rows(analysis)
    ]
    sizes = ", ".join(f"{b} {sum(row[i] for row in items)}" for i, b in enumerate(analysis.benches))
    return (
        f"Minimum detectable effect ({POWER:.0%} power, two-sided alpha {ALPHA:g}; held-out "
        f"items over all seeds: {sizes}; worst case for scores in [0, 1], item noise only): "
        + ", ".join(parts)
        + "."
    )
