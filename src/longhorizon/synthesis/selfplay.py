"""Self-play expansion: propose -> solve (the harness) -> verify (five rules) -> write back.

Every task and every solver and no-tool attempt goes into the KAG, accepted or not; accepted
tasks and their trajectories go to the task and trajectory stores. Rejections return to the
proposer with their reasons. Rerunning continues: tasks already in the KAG are skipped.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from longhorizon.core import SamplingParams, Task, TaskStore, Trajectory, TrajectoryStore
from longhorizon.core.files import write_text_atomic
from longhorizon.core.progress import progress_bar
from longhorizon.core.trajectory import longest_turn
from longhorizon.harness import HarnessConfig
from longhorizon.kag import KnowledgeActionGraph, TaskStatus
from longhorizon.synthesis.acceptance import rejection_reasons, unverifiable
from longhorizon.synthesis.attempt import Attempt, AttemptRunner, GuessTries, LocalAttempts
from longhorizon.synthesis.decontam import ContaminationIndex, Hit
from longhorizon.synthesis.types import Domain

# A proposal's outcome: its solve (None: rejected before solving) and its rejection reasons.
Outcome = tuple[Trajectory | None, list[str]]


class SynthConfig(BaseModel):
    n: int = Field(ge=1, description="accepted tasks wanted")
    out: Path
    seed: int = 0
    concurrency: int = Field(default=8, ge=1)
    max_proposals_per_task: int = Field(default=5, ge=1, description="give up after n x this")
    sampling: SamplingParams = Field(default_factory=lambda: SamplingParams(temperature=0.0))
    guessing: GuessTries = GuessTries()  # the no-tool guesser's tries (a model guesser's k)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after runs were cached: at its default it stays out of synthesis' content keys.
        dumped = dict(handler(self))
        if self.guessing == GuessTries():
            dumped.pop("guessing", None)
        return dumped


@dataclass
class SynthReport:
    domain: str
    wanted: int
    accepted: int = 0
    proposed: int = 0
    skipped_known: int = 0
    proposer_empty: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    turns: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    contamination: list[Hit] = field(default_factory=list)
    wall_s: float = 0.0
    exhausted: bool = False  # a round of draws found nothing new: the level has no more tasks
    longest_turn: int = 0  # completion tokens of the longest model call accepted: L_resp's floor

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        data["rejected"] = dict(self.rejected)
        data["avg_turns"] = sum(self.turns) / len(self.turns) if self.turns else 0.0
        data["avg_tokens"] = sum(self.tokens) / len(self.tokens) if self.tokens else 0.0
        del data["turns"], data["tokens"]
        return data


class SelfPlay:
    def __init__(
        self,
        domain: Domain,
        config: SynthConfig,
        kag: KnowledgeActionGraph,
        contamination: ContaminationIndex | None = None,
        runner: AttemptRunner | None = None,
    ) -> None:
        self.domain = domain
        self.config = config
        self.kag = kag
        self.contamination = contamination
        self.tasks = TaskStore(config.out / "tasks")
        self.trajectories = TrajectoryStore(config.out / "trajectories")
        self.known = {t.id for t, _, _ in kag.tasks(domain.name)}
        harness = HarnessConfig(sampling=config.sampling, workdir=config.out / "workdirs")
        self.harness = harness
        # Where the episodes run: here by default, on Ray workers with `synth --ray`.
        self.runner = runner or LocalAttempts(domain, harness, config.seed, config.guessing)
        self.report = SynthReport(domain=domain.name, wanted=config.n, accepted=len(self.tasks))

    async def run(self, show_progress: bool = True) -> SynthReport:
        rng = random.Random(self.config.seed)
        start = time.perf_counter()
        budget = self.config.n * self.config.max_proposals_per_task
        with progress_bar(show_progress, stats=False) as progress:
            bar = progress.add_task(
                f"synth {self.domain.name}", total=self.config.n, completed=self.report.accepted
            )
            while self.report.accepted < self.config.n and self.report.proposed < budget:
                batch = self._propose(rng, self.config.concurrency)
                if not batch:  # 20 draws per slot gave nothing new: drawing on would spin
                    self.report.exhausted = True
                    break
                outcomes = await self._attempt_batch(batch)
                # Decide in proposal order, not completion order: the same seed then keeps
                # the same tasks and feeds the proposer back in the same order.
                for task, (traj, reasons) in zip(batch, outcomes, strict=True):
                    self._decide(task, traj, reasons)
                progress.update(
                    bar,
                    completed=min(self.report.accepted, self.config.n),
                    description=f"synth {self.domain.name} ({self._line()})",
                )
        self.tasks.close()
        self.trajectories.close()
        self.report.wall_s = time.perf_counter() - start
        self._write_report()
        return self.report

    def _line(self) -> str:
        rejected = sum(self.report.rejected.values())
        return f"{self.report.proposed} proposed, {rejected} rejected"

    def _propose(self, rng: random.Random, count: int) -> list[Task]:
        batch: list[Task] = []
        tries = 0
        while len(batch) < count and tries < count * 20:
            tries += 1
            task = self.domain.proposer.propose(rng)
            if task is None:
                self.report.proposer_empty += 1
            elif task.id in self.known or any(t.id == task.id for t in batch):
                self.report.skipped_known += 1
            else:
                batch.append(task)
        self.report.proposed += len(batch)
        return batch

    async def _attempt_batch(self, batch: list[Task]) -> list[Outcome]:
        """Each proposal's trajectory (None: not solved) and rejection reasons, in batch order.
        Screened out here, attempted by `self.runner`; results are recorded as they arrive."""
        outcomes: list[Outcome] = [(None, self._screen(task)) for task in batch]
        todo = [i for i, (_, reasons) in enumerate(outcomes) if not reasons]
        async for k, attempt in self.runner.attempts([batch[i] for i in todo]):
            task = batch[todo[k]]
            for traj, role in attempt.trajectories():  # one write per id: a rerun overwrites
                self.kag.record_trajectory(traj, role)
            outcomes[todo[k]] = (attempt.solve, self._judge(task, attempt))
        return outcomes

    def _screen(self, task: Task) -> list[str]:
        """Rejection reasons found before solving (empty: attempt it)."""
        self.known.add(task.id)
        hit = self._contaminated(task.id, task.instruction)
        if hit is not None:
            return [f"contaminated: overlaps {hit.source}"]
        # Checked before solving: the domain's verify raises on a verifier it does not know.
        unknown = unverifiable(task, self.domain.verifiers)
        if unknown is not None:
            return [unknown]
        screened = self.domain.screen(task) if self.domain.screen is not None else None
        return [screened] if screened is not None else []

    def _judge(self, task: Task, attempt: Attempt) -> list[str]:
        """The five rules and the trajectory's contamination audit; empty when it passes."""
        traj = attempt.solve
        reasons = rejection_reasons(
            task, traj, attempt.guess, self.domain.min_tool_steps, self.domain.process_verifiers
        )
        text_hit = self._contaminated(traj.id, _trajectory_text(traj))
        if text_hit is not None:
            reasons.append(f"contaminated: trajectory overlaps {text_hit.source}")
        return reasons

    def _decide(self, task: Task, traj: Trajectory | None, reasons: list[str]) -> None:
        if reasons or traj is None:
            self._reject(task, reasons)
            return
        if self.report.accepted >= self.config.n:
            return  # the quota is full; keep it exact
        self.kag.record_task(task, TaskStatus.ACCEPTED)
        self.tasks.add(task)
        self.trajectories.add(traj)
        self.report.accepted += 1
        self.report.turns.append(traj.usage.model_calls)
        self.report.tokens.append(sum(len(s) for s in traj.token_sequences()))
        self.report.longest_turn = max(self.report.longest_turn, longest_turn(traj))
        self.domain.proposer.feedback(task, [])

    def _reject(self, task: Task, reasons: list[str]) -> None:
        self.kag.record_task(task, TaskStatus.REJECTED, "; ".join(reasons))
        for reason in reasons:
            self.report.rejected[reason.split(":", 1)[0]] += 1
        self.domain.proposer.feedback(task, reasons)

    def _contaminated(self, item_id: str, text: str) -> Hit | None:
        if self.contamination is None:
            return None
        hit = self.contamination.check(item_id, text)
        if hit is not None:
            self.report.contamination.append(hit)
        return hit

    def _write_report(self) -> None:
        summary = json.dumps(self.report.summary(), indent=2, default=str) + "\n"
        write_text_atomic(self.config.out / "synth_report.json", summary)


def _trajectory_text(traj: Trajectory) -> str:
    return "\n".join(m.content or "" for m in traj.messages if m.role in ("assistant", "tool"))
