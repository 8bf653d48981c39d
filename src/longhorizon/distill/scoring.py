"""Teacher scoring of rollouts at every trainable position, cached on disk.

What a position carries depends on the loss kind: the teacher's top-k (every kind but full_rkl
uses it, for the loss or the coverage monitor), its logprob of the sampled token, its logprobs
at the rollout policy's own top-k ids (student_topk, union) or over the whole vocabulary
(full_rkl). The last two need an in-process teacher (`TeacherRegistry.check` says so at start).

Soft routing scores a sample under the mixture p_mix = sum_j w_j p_j of its domain's teachers,
formed over the whole vocabulary at each position (log p_mix = logsumexp_j(log w_j + log p_j))
before anything is read from it: the top-k, the sampled token's logprob, the student's ids and
the full row all come from the mixture, so every loss kind trains against the mixture on its
own support (SVA's salient set is the mixture's top-k, not a union of the teachers').

The cache key is the teacher (or the mixture: ids and weights), k, the exact token ids and
positions and the requested ids, so a replayed rollout (a resumed run, an ablation over
aggregation) is never scored twice. Full vocabulary logprobs are not cached (P x V floats
per sequence).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from longhorizon.distill.kernels import student_topk_ids
from longhorizon.distill.teachers import TeacherRegistry
from longhorizon.models.types import SequenceScores

__all__ = [
    "ScoreCache",
    "ScoreRequest",
    "TeacherScores",
    "mixed_logprobs",
    "policy_topk",
    "score_in_process",
    "score_mixture_in_process",
    "score_sequences",
]

SCORE_CHUNK = 256  # positions per output-layer chunk: bounds memory to chunk x vocab


@dataclass(frozen=True)
class ScoreRequest:
    domain: str
    input_ids: list[int]
    positions: list[int]  # target positions (1 <= p < len(input_ids))
    student_ids: np.ndarray | None = None  # (P, k) ids the teacher must score; -1 = none
    full: bool = False  # full-vocabulary logprobs (full_rkl)


@dataclass(frozen=True)
class TeacherScores:
    """Row i of every array is about target position positions[i]."""

    positions: np.ndarray  # (P,) int64
    target_logprobs: np.ndarray  # (P,) float32: logprob of the sampled token
    top_ids: np.ndarray  # (P, K) int64, most likely first
    top_logprobs: np.ndarray  # (P, K) float32, under the teacher's full softmax
    student_ids: np.ndarray | None = None  # (P, k) int64, -1 = padding
    student_logprobs: np.ndarray | None = None  # (P, k) float32 teacher logprobs of student_ids
    full_logprobs: np.ndarray | None = None  # (P, V) float32

    @classmethod
    def from_sequence(cls, scores: SequenceScores) -> TeacherScores:
        p = len(scores.positions)
        return cls(
            positions=np.asarray(scores.positions, dtype=np.int64),
            target_logprobs=np.asarray(scores.target_logprobs, dtype=np.float32),
            top_ids=np.asarray(scores.top_ids, dtype=np.int64).reshape(p, -1),
            top_logprobs=np.asarray(scores.top_logprobs, dtype=np.float32).reshape(p, -1),
        )


class ScoreCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(teacher: str, top_k: int, request: ScoreRequest) -> str:
        h = hashlib.sha256(f"{teacher}|{top_k}|".encode())
        h.update(np.asarray(request.input_ids, dtype=np.int64).tobytes())
        h.update(np.asarray(request.positions, dtype=np.int64).tobytes())
        if request.student_ids is not None:
            h.update(b"|student|" + np.asarray(request.student_ids, dtype=np.int64).tobytes())
        return h.hexdigest()[:32]

    def get(self, key: str) -> TeacherScores | None:
        path = self.root / f"{key}.npz"
        if not path.exists():
            return None
        with np.load(path) as data:
            return TeacherScores(**{name: data[name] for name in data.files})

    def put(self, key: str, scores: TeacherScores) -> None:
        arrays = {f.name: getattr(scores, f.name) for f in fields(scores)}
        arrays = {k: v for k, v in arrays.items() if v is not None and k != "full_logprobs"}
        tmp = self.root / f".{key}.{os.getpid()}.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, self.root / f"{key}.npz")


async def score_sequences(
    registry: TeacherRegistry,
    requests: list[ScoreRequest],
    top_k: int,
    cache: ScoreCache | None = None,
    batch_size: int = 8,
) -> list[TeacherScores]:
    """Scores of each request by its domain's teacher (or teacher mixture), in request order.

    Cache misses go to their teacher in batches (one forward pass for an in-process teacher,
    concurrent requests for a server).
    """
    results: list[TeacherScores | None] = [None] * len(requests)
    misses: dict[str, list[tuple[int, str]]] = {}
    for i, request in enumerate(requests):
        key = ScoreCache.key(registry.name(request.domain), top_k, request)
        hit = cache.get(key) if cache is not None and not request.full else None
        if hit is not None:
            results[i] = hit
        else:
            misses.setdefault(request.domain, []).append((i, key))
    for domain, items in misses.items():
        for lo in range(0, len(items), batch_size):
            part = items[lo : lo + batch_size]
            scored = await _score_part(registry, domain, [requests[i] for i, _ in part], top_k)
            for (i, key), scores in zip(part, scored, strict=True):
                results[i] = scores
                if cache is not None and not requests[i].full:
                    cache.put(key, scores)
    return [r for r in results if r is not None]


async def _score_part(
    registry: TeacherRegistry, domain: str, requests: list[ScoreRequest], top_k: int
) -> list[TeacherScores]:
    mix = registry.mixture(domain)
    if mix is not None:
        models = []
        for teacher, weight in mix.items():
            backend = registry.in_process(teacher)
            assert backend is not None  # TeacherRegistry.check refuses served teachers in a mix
            models.append((backend.model, weight))
        return await asyncio.to_thread(score_mixture_in_process, models, requests, top_k)
    local = registry.in_process(domain)
    if local is not None:
        return await asyncio.to_thread(score_in_process, local.model, requests, top_k)
    served = registry[domain]
    scored = await asyncio.gather(
        *(served.score(r.input_ids, positions=r.positions, top_k=top_k) for r in requests)
    )
    return [TeacherScores.from_sequence(s) for s in scored]


def _hidden_at(model: Any, requests: list[ScoreRequest]) -> list[torch.Tensor]:
    """Final hidden states predicting each request's positions: (P_i, H) per request."""
    device = next(model.parameters()).device
    width = max(len(r.input_ids) for r in requests)
    ids = torch.zeros((len(requests), width), dtype=torch.long)
    attention = torch.zeros_like(ids)
    for i, r in enumerate(requests):
        ids[i, : len(r.input_ids)] = torch.tensor(r.input_ids)
        attention[i, : len(r.input_ids)] = 1
    hidden = model.base_model(
        input_ids=ids.to(device), attention_mask=attention.to(device)
    ).last_hidden_state
    rows = [torch.as_tensor(r.positions, dtype=torch.long, device=device) - 1 for r in requests]
    return [hidden[i].index_select(0, where) for i, where in enumerate(rows)]


@torch.inference_mode()
def score_in_process(model: Any, requests: list[ScoreRequest], top_k: int) -> list[TeacherScores]:
    """Teacher scores from a local transformers model, one right-padded forward pass."""
    head = model.get_output_embeddings()
    out = []
    for r, h_PH in zip(requests, _hidden_at(model, requests), strict=True):
        parts: dict[str, list[np.ndarray]] = {}
        targets = torch.as_tensor(r.input_ids, device=h_PH.device)[torch.as_tensor(r.positions)]
        for lo in range(0, h_PH.shape[0], SCORE_CHUNK):
            logp = torch.log_softmax(head(h_PH[lo : lo + SCORE_CHUNK]).float(), dim=-1)
            _score_chunk(logp, targets[lo : lo + SCORE_CHUNK], r, lo, top_k, parts)
        out.append(_scores_of(r, parts))
    return out


def mixed_logprobs(logprobs: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """log sum_j w_j p_j(u) from each teacher's log p_j (same shapes, last dim the vocabulary):
    the mixture in probability space, computed stably as a logsumexp. Weights must be > 0."""
    if len({tuple(lp.shape) for lp in logprobs}) != 1:
        shapes = [tuple(lp.shape) for lp in logprobs]
        raise ValueError(f"teachers in a mixture must share the vocabulary size: {shapes}")
    stacked_J = torch.stack(logprobs)
    log_w = torch.tensor([math.log(w) for w in weights], dtype=stacked_J.dtype)
    log_w = log_w.to(stacked_J.device).view(-1, *([1] * (stacked_J.dim() - 1)))
    return torch.logsumexp(stacked_J + log_w, dim=0)


@torch.inference_mode()
def score_mixture_in_process(
    teachers: list[tuple[Any, float]], requests: list[ScoreRequest], top_k: int
) -> list[TeacherScores]:
    """`score_in_process` under the mixture of local models, (model, weight > 0) each: every
    chunk of positions is mixed over the whole vocabulary, then read like one teacher's."""
    hidden = [_hidden_at(model, requests) for model, _ in teachers]
    heads = [model.get_output_embeddings() for model, _ in teachers]
    weights = [w for _, w in teachers]
    out = []
    for i, r in enumerate(requests):
        parts: dict[str, list[np.ndarray]] = {}
        device = hidden[0][i].device
        targets = torch.as_tensor(r.input_ids, device=device)[torch.as_tensor(r.positions)]
        for lo in range(0, hidden[0][i].shape[0], SCORE_CHUNK):
            each = [
                torch.log_softmax(head(h[i][lo : lo + SCORE_CHUNK]).float(), dim=-1).to(device)
                for head, h in zip(heads, hidden, strict=True)
            ]
            logp = mixed_logprobs(each, weights)
            _score_chunk(logp, targets[lo : lo + SCORE_CHUNK], r, lo, top_k, parts)
        out.append(_scores_of(r, parts))
    return out


def _score_chunk(
    logp: torch.Tensor,
    targets: torch.Tensor,
    request: ScoreRequest,
    lo: int,
    top_k: int,
    parts: dict[str, list[np.ndarray]],
) -> None:
    def add(name: str, value: torch.Tensor) -> None:
        parts.setdefault(name, []).append(value.cpu().numpy())

    add("target_logprobs", logp.gather(-1, targets[:, None]).squeeze(-1))
    top = logp.topk(top_k, dim=-1)
    add("top_ids", top.indices)
    add("top_logprobs", top.values)
    if request.student_ids is not None:
        ids = torch.as_tensor(request.student_ids[lo : lo + logp.shape[0]], device=logp.device)
        add("student_logprobs", logp.gather(-1, ids.clamp_min(0)).masked_fill(ids < 0, -torch.inf))
    if request.full:
        add("full_logprobs", logp)


def _scores_of(request: ScoreRequest, parts: dict[str, list[np.ndarray]]) -> TeacherScores:
    joined = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    student = request.student_ids
    return TeacherScores(
        positions=np.asarray(request.positions, dtype=np.int64),
        student_ids=None if student is None else np.asarray(student, dtype=np.int64),
        **joined,
    )


@torch.inference_mode()
def policy_topk(
    model: Any, requests: list[ScoreRequest], k: int, excluded_ids: tuple[int, ...]
) -> list[np.ndarray]:
    """The rollout policy's top-k ids at each request's positions, (P_i, k) int64 (-1 = none).

    student_topk / union take the student's top-k from the policy that sampled the tokens (the
    snapshot), at scoring time, so the teacher scores them in the same pass as its own top-k.
    """
    if not requests:
        return []
    weight = model.get_output_embeddings().weight
    return [
        student_topk_ids(h_PH[None], weight, k, excluded_ids=excluded_ids)[0].cpu().numpy()
        for h_PH in _hidden_at(model, requests)
    ]
