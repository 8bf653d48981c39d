"""The long-horizon curve and the budget cut-offs, from each evaluation's result.json.

`curves(run)`: bench -> stage -> success by the hop count its tasks need (`BenchResult.by_hops`,
pooled over seeds with 95% bootstrap intervals), for the benches whose tasks record hops.
`horizon_section` shows them as a table and `truncation_section` how many episodes of each
stage and bench ended at a budget (TRUNCATED, or an answer forced at the limit).
"""

from __future__ import annotations

from longhorizon.evaluation.stats import Estimate
from longhorizon.report.data import CORE_LABELS, RunData
from longhorizon.report.doc import Block, Heading, Para, Table

__all__ = ["curves", "horizon_section", "stage_order", "truncation_section"]

Curves = dict[str, dict[str, dict[int, Estimate]]]  # bench -> stage -> hops -> estimate


def stage_order(labels: list[str]) -> list[str]:
    """base, sft, the teachers, distilled, then anything else: the pipeline's order."""
    base, sft, distilled = CORE_LABELS

    def key(label: str) -> tuple[int, str]:
        rank = {base: 0, sft: 1, distilled: 3}.get(label, 2 if label.startswith("teacher-") else 4)
        return rank, label

    return sorted(labels, key=key)


def curves(run: RunData) -> Curves:
    out: Curves = {}
    evals = run.evals or {}
    for label in stage_order(list(evals)):
        for bench, entry in sorted(evals[label].items()):
            if entry.result.by_hops:
                out.setdefault(bench, {})[label] = entry.result.by_hops
    return out


def _cell(est: Estimate | None) -> str:
    if est is None:
        return "-"
    return f"{est.mean:.3f} [{est.low:.3f}, {est.high:.3f}] (n={est.n})"


def horizon_section(run: RunData) -> list[Block]:
    head: list[Block] = [Heading("Long-horizon curve")]
    found = curves(run)
    if not found:
        return [*head, Para("No held-out bench recorded its tasks' hop counts.")]
    blocks = list(head)
    for bench, by_stage in found.items():
        hops = sorted({h for by_hops in by_stage.values() for h in by_hops})
        header = ["stage", *(f"{h} hop{'s' if h > 1 else ''}" for h in hops)]
        rows = [[label, *(_cell(c.get(h)) for h in hops)] for label, c in by_stage.items()]
        blocks.append(Table(header, rows, f"{bench}: success by hop count"))
    blocks.append(
        Para(
            "A task of h hops reads h + 1 pages, a search and a visit each: 2(h + 1) tool "
            "steps. Cells: the primary metric over that hop count's items, each item "
            "averaged over seeds, with the 95% percentile-bootstrap interval over items."
        )
    )
    return blocks


def truncation_section(run: RunData) -> list[Block]:
    head: list[Block] = [Heading("Episodes cut by a budget")]
    evals = run.evals or {}
    rows = []
    for label in stage_order(list(evals)):
        for bench, entry in sorted(evals[label].items()):
            result = entry.result
            n = sum(result.n_items.values())
            if n and result.truncated:
                cut, forced = sum(result.truncated.values()), sum(result.forced.values())
                rows.append([label, bench, str(n), str(cut), f"{cut / n:.0%}", str(forced)])
    if not rows:
        return [*head, Para("No episode-based evaluation recorded its truncations.")]
    header = ["stage", "bench", "episodes", "truncated", "share", "answer forced"]
    return [
        *head,
        Table(header, rows, "Held-out episodes (all seeds) that ended at a turn or context limit"),
        Para(
            "truncated: the episode ended without an answer at a limit; answer forced: the "
            "limit was reached and the forced-answer prompt got one (scored as it stands)."
        ),
    ]
