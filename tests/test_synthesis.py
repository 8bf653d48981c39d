"""Self-play synthesis on the search domain: acceptance, resumption, and every rejection rule."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from longhorizon.core import Task, TaskStore, TrajectoryStore, VerifierSpec
from longhorizon.domains.search import SPEC as SEARCH
from longhorizon.domains.search import SearchLevel, SearchProposer
from longhorizon.domains.synth import domain_builder
from longhorizon.kag import KnowledgeActionGraph, TaskStatus
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis import ContaminationIndex, Domain, SelfPlay, SynthConfig


@pytest.fixture(scope="module")
def renderer(tiny_llama_path: str) -> ChatRenderer:
    return ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))


def search_domain(
    out: Path,
    kag: KnowledgeActionGraph,
    renderer: ChatRenderer,
    n_entities: int = 300,
    expert_error_rate: float = 0.1,
) -> Domain:
    """The search spec's synthesis domain, as `longhorizon synth` builds it (world seed 0)."""
    level = SearchLevel(entities=n_entities, expert_error_rate=expert_error_rate)
    return domain_builder(SEARCH, level, 0, out)(kag, renderer, None)


def run(domain, out: Path, kag: KnowledgeActionGraph, n: int, contamination=None):  # type: ignore[no-untyped-def]
    config = SynthConfig(n=n, out=out, seed=0, concurrency=4)
    return asyncio.run(SelfPlay(domain, config, kag, contamination).run(show_progress=False))


class Planted:
    """Wraps the real proposer and plants one defect into every task."""

    def __init__(self, inner, plant) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.plant = inner, plant
        self.feedback_seen: list[list[str]] = []

    def propose(self, rng: random.Random) -> Task | None:
        task = self.inner.propose(rng)
        return None if task is None else self.plant(task)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        self.feedback_seen.append(reasons)


class Finite:
    """The real proposer's first `k` tasks, then only those again: a level with k tasks."""

    def __init__(self, inner, k: int) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.k, self.tasks = inner, k, []  # type: ignore[var-annotated]

    def propose(self, rng: random.Random) -> Task | None:
        if len(self.tasks) < self.k:
            self.tasks.append(self.inner.propose(rng))
            return self.tasks[-1]
        return rng.choice(self.tasks)

    def feedback(self, task: Task, reasons: list[str]) -> None:
        pass


def test_synthesis_stops_when_the_proposer_has_no_new_task(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    """Asking a level with 5 draws for 1,000 tasks ends with those, and says it ran out."""
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = search_domain(tmp_path, kag, renderer, n_entities=300, expert_error_rate=0.0)
        domain.proposer = Finite(domain.proposer, 5)
        report = run(domain, tmp_path, kag, n=1000)
        distinct = {t.id for t in domain.proposer.tasks if t is not None}  # a draw may be empty
        assert report.exhausted and report.proposed == len(distinct) >= 3
        assert len(kag.tasks("search", TaskStatus.ACCEPTED)) == report.accepted
        again = run(domain, tmp_path, kag, n=1000)  # every task is known: nothing is redone
    assert again.exhausted and again.proposed == 0 and again.accepted == report.accepted
    assert json.loads((tmp_path / "synth_report.json").read_text())["exhausted"] is True


def test_accepts_and_resumes(renderer: ChatRenderer, tmp_path: Path) -> None:
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = search_domain(tmp_path, kag, renderer, n_entities=300, expert_error_rate=0.3)
        report = run(domain, tmp_path, kag, n=8)
        assert report.accepted == 8
        assert report.rejected["invalid"] >= 1  # the erring expert's failures are rejected
        assert len(kag.tasks("search", TaskStatus.ACCEPTED)) == 8
        rejected = kag.tasks("search", TaskStatus.REJECTED)
        assert rejected and all(reason for _, _, reason in rejected)
        again = run(search_domain(tmp_path, kag, renderer, n_entities=300), tmp_path, kag, n=10)
        assert len(kag.tasks("search", TaskStatus.ACCEPTED)) == 10
    assert again.accepted == 10 and again.skipped_known >= 1  # judged tasks are not redone
    saved = json.loads((tmp_path / "synth_report.json").read_text())
    assert saved["accepted"] == 10 and saved["avg_turns"] > 3


def test_same_seed_keeps_the_same_tasks_in_the_same_order(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    """Acceptance is decided in proposal order, whichever concurrent attempt finishes first."""
    kept = []
    for name in ("a", "b"):
        out = tmp_path / name
        with KnowledgeActionGraph(out / "kag.db") as kag:
            domain = search_domain(out, kag, renderer, n_entities=300, expert_error_rate=0.3)
            run(domain, out, kag, n=6)
        kept.append([t.id for t in TaskStore(out / "tasks")])
        kept.append([t.task_id for t in TrajectoryStore(out / "trajectories")])
    assert len(kept[0]) == 6 and kept[0] == kept[1]  # trajectories in task order
    assert kept[0] == kept[2] and kept[1] == kept[3]


def rejection_of(  # type: ignore[no-untyped-def]
    plant,
    renderer: ChatRenderer,
    tmp_path: Path,
    lookup: bool = False,
    min_tool_steps: int | None = None,
) -> list[str]:
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = search_domain(tmp_path, kag, renderer, n_entities=300, expert_error_rate=0.0)
        inner = domain.proposer
        if lookup:  # one hop from a named page: search it, read it, read the answer page
            inner = SearchProposer(inner.encyclopedia, hops=(1, 1), named_start_rate=1.0)
        domain.proposer = Planted(inner, plant)
        if min_tool_steps is not None:
            domain.min_tool_steps = min_tool_steps
        report = run(domain, tmp_path, kag, n=1)
        assert report.accepted == 0
        return [r for reasons in domain.proposer.feedback_seen for r in reasons]


def test_planted_shortcut_is_rejected(renderer: ChatRenderer, tmp_path: Path) -> None:
    def leak(task: Task) -> Task:
        return task.model_copy(update={"instruction": f"{task.instruction} (Hint: {task.answer})"})

    reasons = rejection_of(leak, renderer, tmp_path)
    assert reasons and all(r == "shortcut: solved without tools" for r in reasons)


def test_uncovered_evidence_is_rejected(renderer: ChatRenderer, tmp_path: Path) -> None:
    def extra(task: Task) -> Task:
        return task.model_copy(update={"evidence": [*task.evidence, "never-visited-page"]})

    reasons = rejection_of(extra, renderer, tmp_path)
    assert any("uncovered: evidence never consulted ['never-visited-page']" in r for r in reasons)


def test_a_solve_with_too_few_tool_steps_is_rejected(
    renderer: ChatRenderer, tmp_path: Path
) -> None:
    # One hop is the curriculum's first level (4 steps, the search domain's minimum); a domain
    # asking for 5 rejects it as uninformative.
    reasons = rejection_of(lambda t: t, renderer, tmp_path, lookup=True, min_tool_steps=5)
    assert reasons and all(r.startswith("uninformative: 4 tool steps < 5") for r in reasons)


def test_unverifiable_task_is_rejected(renderer: ChatRenderer, tmp_path: Path) -> None:
    def odd(task: Task) -> Task:
        return task.model_copy(update={"verifiers": [VerifierSpec(name="vibes")]})

    reasons = rejection_of(odd, renderer, tmp_path)
    assert any(r == "unverifiable: no known verifier (unknown: ['vibes'])" for r in reasons)


def test_contaminated_task_is_rejected(renderer: ChatRenderer, tmp_path: Path) -> None:
    secret = "the quick brown fox jumps over the lazy dog while seven wizards quietly brew potions"
    index = ContaminationIndex()
    index.add("heldout.jsonl", [secret])

    def contaminate(task: Task) -> Task:
        return task.model_copy(update={"instruction": f"{secret}. {task.instruction}"})

    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = search_domain(tmp_path, kag, renderer, n_entities=300, expert_error_rate=0.0)
        domain.proposer = Planted(domain.proposer, contaminate)
        report = run(domain, tmp_path, kag, n=1, contamination=index)
    assert report.accepted == 0 and report.rejected["contaminated"] >= 1
    assert report.contamination[0].source == "heldout.jsonl"


@pytest.mark.parametrize("domain", ["search", "instruction"])
def test_synth_cli_prints_the_acceptance_report(domain: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from longhorizon.cli.main import app

    args = ["synth", "--domain", domain, "--n", "6", "--out", str(tmp_path)]
    if domain == "search":
        args += ["--level", '{"entities": 300}']
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "accepted / wanted" in result.output and "6 / 6" in result.output
    report = json.loads((tmp_path / "synth_report.json").read_text())
    assert report["accepted"] == 6 and report["domain"] == domain
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        assert len(kag.tasks(domain, TaskStatus.ACCEPTED)) == 6
    bad = CliRunner().invoke(
        app, ["synth", "--domain", "chess", "--n", "1", "--out", str(tmp_path)]
    )
    assert bad.exit_code == 2 and "unknown domain 'chess'" in bad.output
    level = ["--level", '{"entitites": 300}']
    typo = CliRunner().invoke(app, ["synth", "--domain", domain, "--out", str(tmp_path), *level])
    assert typo.exit_code == 2 and f"{domain} level" in typo.output
    tries = ["--guess-tries", "3"]
    scripted = CliRunner().invoke(
        app, ["synth", "--domain", domain, "--out", str(tmp_path), *tries]
    )
    assert scripted.exit_code == 2
    assert "--guess-tries needs --model" in " ".join(scripted.output.split())


@pytest.mark.parametrize(
    ("tries", "wrong", "shortcut"), [(3, 2, True), (2, 2, False), (1, 1, False)]
)
def test_guesser_tries_k_times_and_stops_at_the_first_right_answer(
    renderer: ChatRenderer, tmp_path: Path, tries: int, wrong: int, shortcut: bool
) -> None:
    """A guesser wrong `wrong` times, then right: the task is a shortcut only when a right
    answer comes within k tries; tries after the first sample at T=0.7 with seed + i, and every
    try is in the KAG under its role."""
    from longhorizon.harness.agent import ScriptedAgent
    from longhorizon.synthesis.attempt import GuessTries

    calls: list[str] = []
    sampled: list[tuple[float, int | None]] = []

    class Guesser(ScriptedAgent):
        async def act(self, convo, params):  # type: ignore[no-untyped-def]
            sampled.append((params.temperature, params.seed))
            return await super().act(convo, params)

    def guesser(task: Task) -> ScriptedAgent:
        answer = "Nowhere" if len(calls) < wrong else str(task.answer)
        calls.append(answer)
        return Guesser(renderer, lambda messages: f"<answer>{answer}</answer>", "guesser")

    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = search_domain(tmp_path, kag, renderer, n_entities=300, expert_error_rate=0.0)
        domain.guesser = guesser
        config = SynthConfig(
            n=1,
            out=tmp_path,
            seed=5,
            concurrency=1,
            max_proposals_per_task=1,
            guessing=GuessTries(tries=tries),
        )
        report = asyncio.run(SelfPlay(domain, config, kag).run(show_progress=False))
        rows = kag.db.execute("SELECT id, role, passed, payload FROM trajectories ORDER BY id")
    assert len(calls) == min(tries, wrong + 1)  # it stops at the first right answer
    assert report.proposed == 1 and report.rejected["shortcut"] == int(shortcut)
    assert report.accepted == int(not shortcut)
    roles = sorted(role for _, role, _, _ in rows)
    assert roles == sorted(["solve", "guess", *(f"guess-{i}" for i in range(2, len(calls) + 1))])
    assert sampled == [(0.0, 5)] + [(0.7, 5 + i) for i in range(1, len(calls))]
