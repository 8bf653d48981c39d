"""Where episodes stop: success by the hop count a task needs, and how many hit a budget.

`by_hops` is the long-horizon curve of one bench: the headline metric over the items of each
hop count (`ItemResult.details["hops"]`, from the task's metadata), pooled over seeds as the
bench's own estimate is (each item averaged over the seeds, then the bootstrap over items),
with its 95% interval. `truncation` counts, per seed, the episodes that ended TRUNCATED and
those whose answer was forced at the turn or context limit: both ran out of budget.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel

from longhorizon.core.trajectory import Status
from longhorizon.evaluation.metrics import Metric, bootstrap_metric, seed_averaged
from longhorizon.evaluation.stats import Estimate
from longhorizon.evaluation.types import ItemResult

__all__ = ["Truncation", "by_hops", "truncation"]

TRUNCATED = Status.TRUNCATED.value
FORCED = "answer forced"  # the harness's status_reason when the budget forced the answer


class Truncation(BaseModel):
    """One seed's episodes: how many ran out of budget (truncated, or answer forced)."""

    n: int
    truncated: int
    forced: int


def truncation(items: dict[str, ItemResult]) -> Truncation:
    """The truncation counts of one seed's items (items without a status count as neither)."""
    status = [r.details.get("status") for r in items.values()]
    reasons = [str(r.details.get("status_reason") or "") for r in items.values()]
    return Truncation(
        n=len(items),
        truncated=sum(s == TRUNCATED for s in status),
        forced=sum(r.startswith(FORCED) for r in reasons),
    )


def by_hops(metric: Metric, by_seed: dict[int, dict[str, ItemResult]]) -> dict[int, Estimate]:
    """The metric per hop count over items answered under every seed; {} when no item
    records its hops (a domain without levels by hop count)."""
    ids, num, den = seed_averaged(metric, by_seed)
    if not ids:
        return {}
    first = by_seed[min(by_seed)]
    rows: dict[int, list[int]] = defaultdict(list)
    for row, item_id in enumerate(ids):
        hops = first[item_id].details.get("hops")
        if hops is not None:
            rows[int(hops)].append(row)
    return {h: bootstrap_metric(metric, num[r], den[r]) for h, r in sorted(rows.items())}
