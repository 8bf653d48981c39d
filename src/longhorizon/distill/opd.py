"""Stage 3: multi-teacher, domain-routed on-policy distillation.

Each step: a frozen snapshot of the student rolls out a balanced set of prompts under each
domain's protocol (through the harness, within budgets; TRUNCATED kept, ABORTED retried), the
routed teacher scores the student's own tokens (top-k per trainable position, cached), and the
student takes one optimizer step on the configured loss (SVA by default). The snapshot is
refreshed every `refresh_every` steps.
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from longhorizon.core import SamplingParams, Status, Task, TaskStore, Trajectory, TrajectoryStore
from longhorizon.distill.batch import RolloutSample, build_batch
from longhorizon.distill.config import DistillLossConfig
from longhorizon.distill.losses import distill_loss
from longhorizon.distill.scoring import ScoreCache, score_sequences
from longhorizon.distill.teachers import TeacherRegistry, TeacherSpec
from longhorizon.distill.types import StudentHead
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.models.hf import HFBackend
from longhorizon.models.registry import resolve_model
from longhorizon.tools.catalog import build_toolset

console = Console()


class RolloutConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    prompts_per_step: int = Field(default=8, ge=1, description="spread over the domains")
    domain_weights: dict[str, float] = Field(
        default_factory=dict,
        description="relative share of each domain's prompts per step (missing: 1); the loss "
        "stays domain-normalised, so a weight buys samples, not influence",
    )
    samples_per_prompt: int = Field(default=1, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    refresh_every: int = Field(default=1, ge=1, description="optimizer steps per snapshot")
    concurrency: int = Field(default=8, ge=1)
    max_turns: int | None = Field(default=None, ge=1, description="overrides each task's T_max")
    max_tokens: int | None = Field(default=None, ge=1, description="overrides each task's L_resp")


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    student: str
    teachers: list[TeacherSpec]
    tasks: list[Path] = Field(description="task stores (directories) the prompts come from")
    out: Path
    corpus: dict[str, list[Path]] = Field(default_factory=dict, description="domain -> corpus")
    steps: int = Field(default=20, ge=1)
    lr: float = 1e-5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    micro_batch: int = Field(default=4, ge=1, description="sequences per forward pass")
    minibatches: int = Field(
        default=1, ge=1, description="optimizer steps per rollout batch (shuffled, split evenly)"
    )
    epochs: int = Field(default=1, ge=1, description="passes over each rollout batch")
    loss: DistillLossConfig = Field(default_factory=DistillLossConfig)
    domain_loss_weights: dict[str, float] = Field(
        default_factory=dict,
        description="relative weight of each domain's mean in the domain-normalised loss "
        "(missing: 1; all equal is the spec)",
    )
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    seed: int = 0
    save_every: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _weights_need_domain_aggregation(self) -> DistillConfig:
        if any(w < 0 for w in self.domain_loss_weights.values()):
            raise ValueError("domain_loss_weights must be >= 0")
        if self.domain_loss_weights and self.loss.aggregation != "domain":
            raise ValueError("domain_loss_weights needs loss.aggregation: domain")
        return self


def load_distill_config(path: Path) -> DistillConfig:
    return DistillConfig.model_validate(yaml.safe_load(path.read_text()))


def balanced_prompts(tasks: list[Task]) -> dict[str, list[Task]]:
    """Tasks by domain with duplicate instructions removed (first wins)."""
    seen: set[str] = set()
    by_domain: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        if task.instruction not in seen:
            seen.add(task.instruction)
            by_domain[task.domain].append(task)
    return dict(by_domain)


def pick_prompts(
    by_domain: dict[str, list[Task]],
    count: int,
    rng: random.Random,
    weights: dict[str, float] | None = None,
) -> list[Task]:
    """`count` prompts split over the domains by weight (even by default), each domain >= 1."""
    return [rng.choice(by_domain[d]) for d in domain_slots(sorted(by_domain), count, weights)]


def domain_slots(domains: list[str], count: int, weights: dict[str, float] | None) -> list[str]:
    """The domain of each of `count` prompts: weighted round robin, every domain at least once."""
    share = {d: (weights or {}).get(d, 1.0) for d in domains}
    slots: list[str] = []
    credit = dict.fromkeys(domains, 0.0)
    total = sum(share.values())
    for _ in range(count):
        for d in domains:
            credit[d] += share[d] / total
        best = max(domains, key=lambda d: credit[d])
        credit[best] -= 1.0
        slots.append(best)
    missing = [d for d in domains if d not in slots]
    return missing + slots[: count - len(missing)] if missing and count >= len(domains) else slots


def minibatch_indices(n: int, minibatches: int, epochs: int, rng: random.Random) -> list[list[int]]:
    """Sample indices of each optimizer step: every epoch a fresh shuffle, split evenly."""
    steps = []
    for _ in range(epochs):
        order = list(range(n))
        rng.shuffle(order)
        parts = min(minibatches, n)
        steps.extend(order[m::parts] for m in range(parts))
    return steps


def rollout_samples(trajs: list[Trajectory]) -> list[RolloutSample]:
    return [
        RolloutSample(t.domain, seq.input_ids, seq.loss_mask)
        for t in trajs
        for seq in t.token_sequences()
        if any(seq.loss_mask[1:])
    ]


class Distiller:
    """Owns the student, its rollout snapshot, the teachers and the optimizer."""

    def __init__(self, config: DistillConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        torch.manual_seed(config.seed)
        path = resolve_model(config.student)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.student = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        self.snapshot = HFBackend(
            copy.deepcopy(self.student),
            self.tokenizer,
            model_id="snapshot",
            max_batch_size=config.rollout.concurrency,  # one batch per turn wave
        )
        tasks = [t for root in config.tasks for t in TaskStore(root)]
        self.prompts = balanced_prompts(tasks)
        self.domains = sorted(self.prompts)
        self.teachers = TeacherRegistry.open(config.teachers)
        self.teachers.check(set(self.domains), self.tokenizer)
        self.optimizer = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.cache = ScoreCache(config.out / "teacher_cache")
        self.rollouts = TrajectoryStore(config.out / "rollouts")
        self.resources = self._resources()

    def _resources(self) -> dict[str, Any]:
        from longhorizon.tools.corpus import CorpusIndex

        paths = [p for files in self.config.corpus.values() for p in files]
        return {"corpus_index": CorpusIndex.open(paths)} if paths else {}

    async def rollout(self, step: int, rng: random.Random) -> list[Trajectory]:
        cfg = self.config.rollout
        harness = HarnessConfig(
            sampling=SamplingParams(temperature=cfg.temperature, seed=self.config.seed + step),
            workdir=self.config.out / "workdirs",
            model_concurrency=cfg.concurrency,
        )
        runner = EpisodeRunner(
            BackendAgent(self.snapshot),
            lambda t: build_toolset(t.protocol.tools),
            harness,
            verify=_verifier,
            resources=self.resources,
        )
        prompts = pick_prompts(self.prompts, cfg.prompts_per_step, rng, cfg.domain_weights)
        # Each step's rollouts get their own ids so the store keeps them all for replay.
        tasks = [
            t.with_budgets(cfg.max_turns, cfg.max_tokens).model_copy(
                update={"id": f"{t.id}@step{step}.{i}"}
            )
            for i, t in enumerate(prompts)
        ]
        await run_rollouts(
            runner,
            tasks,
            self.rollouts,
            concurrency=cfg.concurrency,
            samples_per_task=cfg.samples_per_prompt,
            show_progress=False,
        )
        wanted = {t.id for t in tasks}
        return [t for t in self.rollouts if t.task_id in wanted]

    def train_rollout(
        self,
        samples: list[RolloutSample],
        scores: list,  # type: ignore[type-arg]
        rng: random.Random,
    ) -> dict[str, Any]:
        """`epochs` passes over one rollout batch, each split into `minibatches` optimizer steps.

        Rollouts cost far more than updates on CPU, so reusing a batch buys optimizer steps
        cheaply; later updates are slightly off-policy, which a divergence at the visited
        contexts tolerates.
        """
        records = [
            self.train_step([samples[i] for i in chosen], [scores[i] for i in chosen])
            for chosen in minibatch_indices(
                len(samples), self.config.minibatches, self.config.epochs, rng
            )
        ]
        return _merge_updates(records)

    def train_step(self, samples: list[RolloutSample], scores: list) -> dict[str, Any]:  # type: ignore[type-arg]
        """One optimizer step over all samples, in micro-batches, on the configured loss."""
        self.student.train()
        self.optimizer.zero_grad(set_to_none=True)
        chunk = self.config.micro_batch
        total, per_domain = 0.0, defaultdict(list)
        for lo in range(0, len(samples), chunk):
            part = samples[lo : lo + chunk]
            batch = build_batch(
                part,
                scores[lo : lo + chunk],
                self.domains,
                self.tokenizer.pad_token_id or 0,
                self.config.loss.k,
                self.config.domain_loss_weights or None,
            )
            hidden = self.student.base_model(
                input_ids=batch.input_ids_NT, attention_mask=batch.attention_NT
            ).last_hidden_state[:, :-1]
            head = StudentHead(hidden, self.student.get_output_embeddings().weight)
            out = distill_loss(head, batch.teacher, batch.layout, self.config.loss)
            (out.loss * len(part) / len(samples)).backward()
            total += out.loss.item() * len(part) / len(samples)
            for index, metrics in out.metrics.per_domain.items():
                per_domain[self.domains[index]].append(metrics)
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.config.grad_clip)
        self.optimizer.step()
        return {"loss": total, "domains": _mean_metrics(per_domain)}

    def refresh_snapshot(self) -> None:
        self.snapshot.model.load_state_dict(self.student.state_dict())

    async def run(self) -> Path:
        out = self.config.out
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump(self.config.model_dump(mode="json")))
        rng = random.Random(self.config.seed)
        metrics_path = out / "metrics.jsonl"
        for step in range(self.config.steps):
            clock = [time.perf_counter()]
            if step % self.config.rollout.refresh_every == 0:
                self.refresh_snapshot()
            trajs = await self.rollout(step, rng)
            samples = rollout_samples(trajs)
            clock.append(time.perf_counter())
            requests = [(s.domain, s.input_ids, s.positions()) for s in samples]
            scores = await score_sequences(self.teachers, requests, self.config.loss.k, self.cache)
            clock.append(time.perf_counter())
            record = (
                {"step": step + 1, **self.train_rollout(samples, scores, rng)}
                if samples
                else {"step": step + 1, "loss": None, "domains": {}}
            )
            clock.append(time.perf_counter())
            record["rollouts"] = _rollout_metrics(trajs)
            record["seconds"] = clock[-1] - clock[0]
            record["phase_seconds"] = {
                name: clock[i + 1] - clock[i]
                for i, name in enumerate(("rollout", "score", "train"))
            }
            with open(metrics_path, "a") as f:
                f.write(json.dumps(record) + "\n")
            console.print(_line(record))
        final = out / "final"
        self.student.save_pretrained(final)
        self.tokenizer.save_pretrained(final)
        self.rollouts.close()
        await self.teachers.aclose()
        return final


def _verifier(task: Task, traj: Trajectory):  # type: ignore[no-untyped-def]
    from longhorizon.domains import verify  # merge: the opd branch injects `verify` instead

    return verify(task, traj)


def _weighted(values: list[float | None], weights: list[int]) -> float | None:
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if v is not None]
    return sum(v * w for v, w in pairs) / sum(w for _, w in pairs) if pairs else None


def _mean_metrics(per_domain: dict[str, list]) -> dict[str, dict[str, float | None]]:  # type: ignore[type-arg]
    """Micro-batch monitors merged per domain, weighted by each micro-batch's sample count."""
    out: dict[str, dict[str, float | None]] = {}
    for domain, items in per_domain.items():
        weights = [m.n_samples for m in items]
        out[domain] = {
            "loss": _weighted([m.loss for m in items], weights),
            "kl": _weighted([m.kl for m in items], weights),
            "coverage": _weighted([m.coverage for m in items], weights),
            "tokens": float(sum(m.n_tokens for m in items)),
        }
    return out


def _merge_updates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One log record for several updates on a batch: means of the losses and monitors."""
    domains: dict[str, list] = defaultdict(list)  # type: ignore[type-arg]
    for r in records:
        for d, m in r["domains"].items():
            domains[d].append(m)
    merged = {
        d: {
            key: _weighted([m[key] for m in ms], [1] * len(ms))
            for key in ("loss", "kl", "coverage")
        }
        | {"tokens": sum(m["tokens"] for m in ms)}
        for d, ms in domains.items()
    }
    loss = sum(r["loss"] for r in records) / len(records)
    return {"loss": loss, "updates": len(records), "domains": merged}


def _rollout_metrics(trajs: list[Trajectory]) -> dict[str, dict[str, float]]:
    by_domain: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        by_domain[t.domain].append(t)
    return {
        d: {
            "episodes": float(len(ts)),
            "success": sum(t.passed for t in ts) / len(ts),
            "truncation": sum(t.status is Status.TRUNCATED for t in ts) / len(ts),
            "tool_calls": sum(t.usage.tool_calls for t in ts) / len(ts),
        }
        for d, ts in by_domain.items()
    }


def _line(record: dict[str, Any]) -> str:
    parts = [f"step {record['step']}"]
    if record["loss"] is not None:
        parts.append(f"loss {record['loss']:.4f}")
    for domain, m in sorted(record["domains"].items()):
        cov = "" if m["coverage"] is None else f" cov {m['coverage']:.3f}"
        parts.append(f"{domain}: kl {m['kl']:.4f}{cov}")
    for domain, r in sorted(record["rollouts"].items()):
        parts.append(f"{domain} pass {r['success']:.0%} trunc {r['truncation']:.0%}")
    return " | ".join(parts)


def run_distill(config: DistillConfig) -> Path:
    return asyncio.run(Distiller(config).run())
