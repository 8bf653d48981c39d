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
    concurrency: int = 4,
) -> list[SequenceScores]:
    """Scores of (domain, ids, positions) requests, each by its own domain's teacher."""
    limit = asyncio.Semaphore(concurrency)

    async def one(domain: str, ids: list[int], positions: list[int]) -> SequenceScores:
        teacher = registry[domain]
        key = ScoreCache.key(teacher.model_id, top_k, ids, positions)
        if cache is not None and (hit := cache.get(key)) is not None:
            return hit
        async with limit:
            scores = await teacher.score(ids, positions=positions, top_k=top_k)
        if cache is not None:
            cache.put(key, scores)
        return scores

    return await asyncio.gather(*(one(d, ids, pos) for d, ids, pos in requests))
