"""Summarise the solution trees of an MLE synthesis run: `python scripts/mle_trees.py OUT [JSON]`.

Reads OUT/trajectories (the accepted solver episodes), rebuilds each tree from its calls and
prints (and writes to JSON, when given) how many trees have several roots or patches,
invalidations (all, and for leakage), failed nodes kept, and the medal of each answer.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from longhorizon.core import TrajectoryStore
from longhorizon.domains.mle import tree_of


def summarise(out: Path) -> dict[str, object]:
    counts: Counter[str] = Counter()
    medals: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    store = TrajectoryStore(out / "trajectories")
    try:
        for traj in store:
            tree = tree_of(traj)
            nodes = list(tree.nodes.values())
            roots = sum(n.parent is None for n in nodes)
            counts["trees"] += 1
            counts["nodes"] += len(nodes)
            counts["two_roots_or_a_patch"] += roots >= 2 or roots < len(nodes)
            counts["with_invalidation"] += any(n.status == "invalidated" for n in nodes)
            counts["leak_invalidated"] += any(
                (n.invalid_reason or "").startswith("leakage") for n in nodes
            )
            counts["with_failed_node"] += any(n.status == "failed" for n in nodes)
            medals[str(traj.verdicts[0].details.get("medal"))] += 1
            sources[traj.task_id.split("-")[1]] += 1
    finally:
        store.close()
    return {**counts, "medals": dict(medals), "sources": dict(sources)}


if __name__ == "__main__":
    summary = summarise(Path(sys.argv[1]))
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    print(text, end="")
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text)
