"""MLE medals (`mle-medals`): the MLE domain's held-out competitions (never proposed in
synthesis: the wine dataset and a quarter of every other source's recipes), each run as an
agent episode with the solution-tree tools and scored by medal-style thresholds.

An item's medal comes from the committed submission's test gain over the declared baseline,
as a share of the reference pipeline's gain (`tools.mle.MEDALS`: bronze 0.75, silver 0.9,
gold 1.0); no valid committed submission, no medal. Items, episodes, trajectories and the
audit against training tasks are the `mle-heldout` bench's; only the scoring differs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from longhorizon.core import Trajectory, TrajectoryStore
from longhorizon.domains.mle import SPEC, SUBMISSION
from longhorizon.evaluation.bench import Bench, OnResults
from longhorizon.evaluation.heldout import heldout_bench
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent
from longhorizon.tools.mle import MEDALS

__all__ = ["BENCH", "NAME", "with_medal"]

NAME = "mle-medals"
RANK = {name: len(MEDALS) - i for i, (name, _) in enumerate(MEDALS)}  # gold 3 ... bronze 1


def _at_least(medal: str) -> Ratio:
    return Ratio(numerator=lambda r: float(r.details.get("medal_rank", 0) >= RANK[medal]))


METRICS = (
    Metric("any_medal", ((1.0, _at_least("bronze")),), "competitions with a bronze or better"),
    Metric("silver_or_better", ((1.0, _at_least("silver")),), "silver or gold"),
    Metric("gold", ((1.0, _at_least("gold")),), "gold: as good as the reference pipeline"),
    Metric(
        "valid_submission",
        ((1.0, Ratio(numerator=lambda r: float(r.details.get("valid_submission", False)))),),
        "a committed submission the grader accepted",
    ),
    Metric("pass_rate", ((1.0, Ratio()),), "every verdict passed (margin and reliability)"),
)


def with_medal(result: ItemResult, trajectory: Trajectory | None) -> ItemResult:
    """The item with its medal, gain and test score read off the submission verdict."""
    verdict = next(
        (v for v in (trajectory.verdicts if trajectory else []) if v.verifier == SUBMISSION),
        None,
    )
    details: dict[str, Any] = dict(verdict.details) if verdict is not None else {}
    medal = details.get("medal")
    extra = {
        "medal": medal,
        "medal_rank": RANK.get(medal, 0) if medal else 0,
        "gain": details.get("gain"),
        "test_score": details.get("test_score"),
        "valid_submission": "test_score" in details,
    }
    return result.model_copy(update={"bench": NAME, "details": {**result.details, **extra}})


_HELDOUT = heldout_bench(SPEC)


async def run(
    agent: Agent,
    items: list[Any],
    seed: int,
    options: EvalOptions,
    *,
    bench_dir: Path,
    on_results: OnResults | None = None,
) -> list[ItemResult]:
    results = await _HELDOUT.run(agent, items, seed, options, bench_dir=bench_dir)
    store = TrajectoryStore(bench_dir / f"trajectories-seed{seed}")
    try:
        trajectories = {t.id: t for t in store}
    finally:
        store.close()
    out = [with_medal(r, trajectories.get(str(r.details.get("trajectory")))) for r in results]
    if on_results is not None:
        on_results(out)
    return out


BENCH = Bench(
    name=NAME,
    metrics=METRICS,
    load_items=_HELDOUT.load_items,
    item_id=_HELDOUT.item_id,
    run=run,
    description="held-out MLE competitions scored by medals (bronze/silver/gold gain over the "
    "declared baseline, as a share of the reference pipeline's)",
)
