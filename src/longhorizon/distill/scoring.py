"""Teacher scoring of rollouts: top-k (ids, logprobs) at every trainable position, cached.

The cache key is the teacher, k, and the exact token ids and positions, so a replayed rollout
(a resumed run, an ablation over aggregation) is never scored twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import numpy as np

from longhorizon.distill.teachers import TeacherRegistry
from longhorizon.models.types import SequenceScores


class ScoreCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(teacher: str, top_k: int, ids: list[int], positions: list[int]) -> str:
        h = hashlib.sha256(f"{teacher}|{top_k}|".encode())
        h.update(np.asarray(ids, dtype=np.int64).tobytes())
        h.update(np.asarray(positions, dtype=np.int64).tobytes())
        return h.hexdigest()[:32]

    def get(self, key: str) -> SequenceScores | None:
        path = self.root / f"{key}.npz"
        if not path.exists():
            return None
        data = np.load(path)
        return SequenceScores(
            positions=data["positions"].tolist(),
            target_logprobs=data["target"].tolist(),
            top_ids=data["top_ids"].tolist(),
            top_logprobs=data["top_logprobs"].tolist(),
        )

    def put(self, key: str, scores: SequenceScores) -> None:
        tmp = self.root / f".{key}.{os.getpid()}.npz"
        np.savez(
            tmp,
            positions=np.asarray(scores.positions, dtype=np.int64),
            target=np.asarray(scores.target_logprobs, dtype=np.float32),
            top_ids=np.asarray(scores.top_ids, dtype=np.int64),
            top_logprobs=np.asarray(scores.top_logprobs, dtype=np.float32),
        )
        os.replace(tmp, self.root / f"{key}.npz")


async def score_sequences(
    registry: TeacherRegistry,
    requests: list[tuple[str, list[int], list[int]]],
    top_k: int,
    cache: ScoreCache | None = None,
    batch_size: int = 8,
) -> list[SequenceScores]:
    """Scores of (domain, ids, positions) requests, each by its own domain's teacher.

    Cache misses go to their teacher in batches (one forward pass for an in-process teacher,
    concurrent requests for a server).
    """
    results: list[SequenceScores | None] = [None] * len(requests)
    misses: dict[str, list[tuple[int, str]]] = {}
    for i, (domain, ids, positions) in enumerate(requests):
        key = ScoreCache.key(registry[domain].model_id, top_k, ids, positions)
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            results[i] = hit
        else:
            misses.setdefault(domain, []).append((i, key))
    for domain, items in misses.items():
        for lo in range(0, len(items), batch_size):
            part = items[lo : lo + batch_size]
            scored = await _score_part(registry[domain], [requests[i][1:] for i, _ in part], top_k)
            for (i, key), scores in zip(part, scored, strict=True):
                results[i] = scores
                if cache is not None:
                    cache.put(key, scores)
    return [r for r in results if r is not None]


async def _score_part(teacher, pairs: list[tuple[list[int], list[int]]], top_k: int):  # type: ignore[no-untyped-def]
    if hasattr(teacher, "score_batch"):
        return await teacher.score_batch(pairs, top_k)
    return await asyncio.gather(
        *(teacher.score(ids, positions=pos, top_k=top_k) for ids, pos in pairs)
    )
