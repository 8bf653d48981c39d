"""search-heldout: multi-hop questions synthesis never proposed, solved with search and visit.

The world is built as synthesis builds it (`synthesis/search.py`): a seeded encyclopedia
(`search_entities`, `search_world_seed`; synthesis' defaults 3000 and 0), its corpus written
to `<bench dir>/corpus/` and indexed with BM25 (`CorpusIndex`), so the tools search exactly
the pages the questions were walked over. Questions come from the reserved seed range and
pass the audit against `--train-tasks` (see `heldout`). 100 tasks unless --limit says fewer.
Each runs as an episode with the domain's tools (search, visit, python) and is scored by
`verify_search` (exact answer and every evidence page visited).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from longhorizon.core.task import Task
from longhorizon.domains.search import Encyclopedia, EncyclopediaConfig, verify_search
from longhorizon.evaluation.bench import Bench, Loaded, OnResults
from longhorizon.evaluation.episodes import run_episodes
from longhorizon.evaluation.heldout import audit, search_tasks
from longhorizon.evaluation.metrics import Metric, Ratio
from longhorizon.evaluation.options import EvalOptions
from longhorizon.evaluation.types import ItemResult
from longhorizon.harness.agent import Agent
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusIndex

NAME = "search-heldout"
DEFAULT_SIZE = 100
METRICS = (Metric("pass_rate", ((1.0, Ratio()),), "episodes whose every verdict passed"),)


@lru_cache(maxsize=4)
def world(n_entities: int, seed: int) -> Encyclopedia:
    """The encyclopedia (deterministic in its config), built once per process."""
    return Encyclopedia.generate(EncyclopediaConfig(n_entities=n_entities, seed=seed))


def corpus_index(options: EvalOptions, bench_dir: Path) -> CorpusIndex:
    """BM25 over the world's written corpus (cached on disk by the corpus' content hash)."""
    encyclopedia = world(options.search_entities, options.search_world_seed)
    corpus_dir = bench_dir / f"corpus-{options.search_entities}-{options.search_world_seed}"
    path = corpus_dir / "corpus.jsonl"
    if not path.exists():
        path = encyclopedia.write(corpus_dir)
    return CorpusIndex.open(path)


def load_items(options: EvalOptions, bench_dir: Path) -> Loaded:
    encyclopedia = world(options.search_entities, options.search_world_seed)
    tasks = search_tasks(encyclopedia, options.limit or DEFAULT_SIZE, options.heldout_seed)
    kept, report = audit(
        tasks, options.train_tasks, rule=options.audit_rule, containment=options.containment
    )
    info = {
        "world": {"n_entities": options.search_entities, "seed": options.search_world_seed},
        "heldout_seed": options.heldout_seed,
        "audit": report.summary(),
    }
    return Loaded(kept, info)


def item_id(task: Task) -> str:
    return task.id


async def run(
    agent: Agent,
    items: list[Task],
    seed: int,
    options: EvalOptions,
    *,
    bench_dir: Path,
    on_results: OnResults | None = None,
) -> list[ItemResult]:
    return await run_episodes(
        NAME,
        agent,
        items,
        seed,
        options,
        bench_dir=bench_dir,
        toolsets=lambda t: build_toolset(t.protocol.tools),
        verify=lambda task, traj: verify_search(task, traj),
        resources={"corpus_index": corpus_index(options, bench_dir)},
        on_results=on_results,
    )


BENCH = Bench(
    name=NAME,
    metrics=METRICS,
    load_items=load_items,
    item_id=item_id,
    run=run,
    description="held-out multi-hop search questions (reserved seeds), verifier pass",
)
