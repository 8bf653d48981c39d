"""Trajectories -> training samples, from the stored token ids and loss masks (never re-tokenised).

A sample is one training sequence of one trajectory (one per leaf model call; one for a linear
episode), or one piece of it when an over-long sequence is split. Every sample keeps its domain
label so that later stages can normalise losses per domain.

Selection, in order:
1. filters: status (COMPLETED by default; TRUNCATED prefixes optionally), verdict (passed only by
   default), domain, tool use (`tool_use`: `without` keeps reasoning traces, those with no tool
   call; `with` keeps those with at least one: the two stages of a two-stage teacher);
2. domain mix: with `mix` weights, each listed domain gets round(w_d / sum(w) * total)
   trajectories (total defaults to the number that passed the filters), drawn without replacement
   and repeated whole when a domain has fewer than its share; unlisted domains are left out.
   The unit is the trajectory, so a split trajectory keeps all its pieces together;
3. `token_share` < 1: each training sequence keeps its first ceil(share x length) tokens (a
   linear episode's sequence is its whole trajectory: a trajectory truncated to a share of its
   tokens, for studies of trajectory length);
4. over-long policy, for sequences longer than `max_len`:
   - `drop`: leave the sequence out;
   - `split`: cut only where a model call's new prompt starts, packing consecutive calls greedily
     into pieces of at most `max_len` tokens; each piece starts at a call's prompt and keeps its
     mask. A single call longer than `max_len` keeps its first `max_len` tokens. Pieces after the
     first lose the earlier context: that is the price of keeping every trained token;
   - `prefix`: keep the first `max_len` tokens (a TRUNCATED-style valid prefix).
   Samples left with no trainable token are dropped.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from longhorizon.core.store import TrajectoryStore
from longhorizon.core.tokens import ModelCall, call_sequence, leaf_calls
from longhorizon.core.trajectory import Status, Trajectory

OverlongPolicy = Literal["drop", "split", "prefix"]
VerdictFilter = Literal["passed", "failed", "any"]
ToolUseFilter = Literal["any", "without", "with"]


class DataConfig(BaseModel):
    """Where trajectories come from and which of them become training samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # TrajectoryStore directories (JSONL shards) or single .jsonl files of Trajectory records.
    paths: tuple[Path, ...] = ()
    statuses: tuple[Status, ...] = (Status.COMPLETED,)
    verdict: VerdictFilter = "passed"
    domains: tuple[str, ...] | None = None  # None: every domain
    mix: dict[str, float] | None = None  # domain -> weight (relative share of trajectories)
    mix_total: int | None = Field(default=None, ge=1)  # trajectories after mixing
    overlong: OverlongPolicy = "split"
    # Share of each training sequence kept (its first tokens); 1 keeps all.
    token_share: float = Field(default=1.0, gt=0, le=1)
    tool_use: ToolUseFilter = "any"  # without: no tool call in the trajectory; with: at least one
    seed: int = 0

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after SFT runs were cached: at its default it stays out of their content keys.
        if self.tool_use == "any":
            return {k: v for k, v in handler(self).items() if k != "tool_use"}
        return dict(handler(self))


@dataclass(frozen=True)
class Sample:
    """One training sequence: token ids, loss mask (1 = trained), and where it came from."""

    input_ids: np.ndarray  # int32
    loss_mask: np.ndarray  # uint8, same length
    domain: str
    trajectory_id: str
    piece: int = 0  # index of the piece when the policy split the sequence

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def num_trainable(self) -> int:
        """Trained tokens that can be predicted: the first token has no context to predict it."""
        return int(self.loss_mask[1:].sum())


def load_trajectories(paths: Iterable[Path]) -> Iterator[Trajectory]:
    """Every trajectory under the given store directories or JSONL files, in path order."""
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such trajectory store or file")
        if path.is_dir():
            store = TrajectoryStore(path)
            yield from store
            store.close()
        elif path.suffix == ".jsonl":
            with path.open() as f:
                for line in f:
                    if line.strip():
                        yield Trajectory.model_validate_json(line)
        else:
            raise FileNotFoundError(f"{path}: not a trajectory store directory or .jsonl file")


def keep_trajectory(traj: Trajectory, cfg: DataConfig) -> bool:
    """The status, domain, tool-use and verdict filters."""
    if traj.status not in cfg.statuses:
        return False
    if cfg.domains is not None and traj.domain not in cfg.domains:
        return False
    if cfg.tool_use != "any" and bool(traj.steps) != (cfg.tool_use == "with"):
        return False
    if cfg.verdict == "passed":
        return traj.passed
    if cfg.verdict == "failed":
        return not traj.passed
    return True


def mix_domains(trajs: list[Trajectory], cfg: DataConfig) -> list[Trajectory]:
    """Draw trajectories per domain to the mix weights (seeded); identity without weights."""
    if not cfg.mix:
        return trajs
    by_domain: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajs:
        by_domain[t.domain].append(t)
    weights = {d: w for d, w in cfg.mix.items() if w > 0}
    total_weight = sum(weights.values())
    total = cfg.mix_total or len(trajs)
    rng = np.random.default_rng(cfg.seed)
    mixed: list[Trajectory] = []
    for domain in sorted(weights):
        pool = by_domain.get(domain, [])
        want = round(weights[domain] / total_weight * total)
        if not pool or want == 0:
            continue
        repeats, rest = divmod(want, len(pool))
        mixed += pool * repeats  # whole repeats first, so no trajectory is over-represented
        mixed += [pool[i] for i in sorted(rng.choice(len(pool), size=rest, replace=False))]
    return mixed


def call_boundaries(calls: list[ModelCall], leaf: int) -> list[int]:
    """Offsets in the leaf's sequence where a call's new prompt starts (always includes 0).

    Walks from the leaf to the root. A call whose start lies beyond what a later call kept of
    the context (context compaction cut it) is not in the leaf's sequence and gives no boundary.
    """
    starts = {0}
    limit = math.inf
    index: int | None = leaf
    while index is not None:
        call = calls[index]
        start = call.prefix_len if call.parent is not None else 0
        if start < limit:
            starts.add(start)
            limit = start
        index = call.parent
    return sorted(starts)


def split_at_boundaries(length: int, boundaries: list[int], max_len: int) -> list[tuple[int, int]]:
    """Greedy [start, end) pieces of at most max_len tokens, cut only at the given boundaries."""
    cuts = [b for b in boundaries if 0 < b < length] + [length]
    pieces: list[tuple[int, int]] = []
    start = 0
    prev = 0  # the last boundary that still fits in the current piece
    for cut in cuts:
        if cut - start > max_len and prev > start:
            pieces.append((start, prev))
            start = prev
        prev = cut
    pieces.append((start, length))
    # A single call longer than max_len: keep its first max_len tokens.
    return [(s, min(e, s + max_len)) for s, e in pieces]


def sequence_pieces(
    traj: Trajectory, leaf: int, max_len: int, policy: OverlongPolicy, share: float = 1.0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (ids, mask) pieces of one training sequence: its first `share` of tokens, under
    the over-long policy."""
    seq = call_sequence(traj.calls, leaf)
    keep = math.ceil(share * len(seq.input_ids))
    ids = np.asarray(seq.input_ids[:keep], dtype=np.int32)
    mask = np.asarray(seq.loss_mask[:keep], dtype=np.uint8)
    if len(ids) <= max_len:
        return [(ids, mask)]
    if policy == "drop":
        return []
    if policy == "prefix":
        return [(ids[:max_len], mask[:max_len])]
    spans = split_at_boundaries(len(ids), call_boundaries(traj.calls, leaf), max_len)
    return [(ids[s:e], mask[s:e]) for s, e in spans]


def trajectory_samples(
    traj: Trajectory, max_len: int, policy: OverlongPolicy, share: float = 1.0
) -> list[Sample]:
    """All samples of one trajectory; pieces without a trainable token are dropped."""
    samples: list[Sample] = []
    for leaf in leaf_calls(traj.calls):
        pieces = sequence_pieces(traj, leaf, max_len, policy, share)
        for piece, (ids, mask) in enumerate(pieces):
            sample = Sample(ids, mask, traj.domain, traj.id, piece)
            if sample.num_trainable > 0:
                samples.append(sample)
    return samples


def build_samples(
    trajectories: Iterable[Trajectory], cfg: DataConfig, max_len: int
) -> list[Sample]:
    """Filter, mix and cut trajectories into training samples (deterministic for a seed)."""
    kept = [t for t in trajectories if keep_trajectory(t, cfg)]
    samples: list[Sample] = []
    for traj in mix_domains(kept, cfg):
        samples += trajectory_samples(traj, max_len, cfg.overlong, cfg.token_share)
    return samples


class DataError(ValueError):
    """Training data that cannot train: nothing is left after the filters."""


def load_samples(cfg: DataConfig, max_len: int) -> list[Sample]:
    """`build_samples` over the trajectories stored at `cfg.paths`; a DataError, naming what
    the paths hold, when the filters leave nothing (before any model is loaded)."""
    read: Counter[str] = Counter()

    def counted() -> Iterator[Trajectory]:
        for traj in load_trajectories(cfg.paths):
            read[traj.domain] += 1
            yield traj

    samples = build_samples(counted(), cfg, max_len)
    if not samples:
        held = ", ".join(f"{d} {n}" for d, n in sorted(read.items())) or "none"
        kept = "every domain" if cfg.domains is None else f"domains {list(cfg.domains)}"
        statuses = [str(s.value) for s in cfg.statuses]
        raise DataError(
            f"no training samples in {[str(p) for p in cfg.paths]}: trajectories by domain: "
            f"{held}; the filters keep {kept}, statuses {statuses}, verdict {cfg.verdict}, "
            f"tool use {cfg.tool_use}"
        )
    return samples


def domain_counts(samples: Iterable[Sample]) -> dict[str, dict[str, int]]:
    """Samples, tokens and trainable tokens per domain (printed at the start of a run)."""
    counts: dict[str, dict[str, int]] = defaultdict(
        lambda: {"samples": 0, "tokens": 0, "trained": 0}
    )
    for s in samples:
        c = counts[s.domain]
        c["samples"] += 1
        c["tokens"] += len(s)
        c["trained"] += s.num_trainable
    return dict(sorted(counts.items()))
