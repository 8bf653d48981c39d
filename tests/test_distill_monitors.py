"""The per-token OPD monitor log: a real one-step run, its values checked against the logged
per-domain means and the teacher's cached top-k."""

from __future__ import annotations

import numpy as np
import pytest

from longhorizon.core import TrajectoryStore
from longhorizon.distill.monitors import MONITORS_FILE, TokenMonitorLog, read_token_monitors
from longhorizon.distill.scoring import ScoreCache, ScoreRequest
from longhorizon.models.registry import resolve_model
from longhorizon.training.metrics import read_metrics
from tests.test_distill_opd import opd_fields, run_in_process


def test_token_monitors_reproduce_the_logged_means_and_the_teacher_top_k(tmp_path) -> None:
    fields = opd_fields(
        tmp_path,
        steps=1,
        token_monitors=3,
        rollout={"prompts_per_step": 4, "concurrency": 2, "max_tokens": 12, "max_turns": 1},
    )
    run_in_process(fields)
    out = tmp_path / "run"
    (record,) = read_metrics(out)
    monitors = read_token_monitors(out)
    rollouts = {t.id: t for t in TrajectoryStore(out / "rollouts")}
    trained = [
        (t.id, j)
        for t in rollouts.values()
        for j, s in enumerate(t.token_sequences())
        if any(s.loss_mask[1:])
    ]
    assert sorted((m.trajectory_id, m.sequence) for m in monitors) == sorted(trained)
    for domain, logged in record["domains"].items():
        mine = [m for m in monitors if m.domain == domain]
        assert np.mean([np.mean(m.kl) for m in mine]) == pytest.approx(logged["kl"], rel=1e-5)
        cov = np.mean([np.mean(m.coverage or []) for m in mine])
        assert cov == pytest.approx(logged["coverage"], rel=1e-5)
    cache = ScoreCache(out / "teacher_cache")
    teacher = resolve_model("tiny-tool-caller")  # the in-process teacher's model id
    for m in monitors:
        seq = rollouts[m.trajectory_id].token_sequences()[m.sequence]
        assert all(seq.loss_mask[p] == 1 for p in m.positions)  # only trained tokens
        assert m.step == 1 and m.teacher == teacher and min(m.kl) >= 0
        scored = [p for p in range(1, len(seq.input_ids)) if seq.loss_mask[p]]
        key = ScoreCache.key(m.teacher, 8, ScoreRequest(m.domain, seq.input_ids, scored))
        cached = cache.get(key)
        assert cached is not None
        rows = [scored.index(p) for p in m.positions]
        assert m.teacher_top_ids == cached.top_ids[rows, :3].tolist()
    # The student's own top-k is recorded with each rollout token.
    call = next(iter(rollouts.values())).calls[0]
    assert call.top_logprobs is not None and len(call.top_logprobs) == len(call.completion_ids)
    assert {len(top) for top in call.top_logprobs} == {3}
    # A resumed run drops the lines of steps past its checkpoint.
    TokenMonitorLog(out, resumed_step=0)
    assert (out / MONITORS_FILE).read_text() == ""


def test_token_monitors_off_writes_nothing(tmp_path) -> None:
    fields = opd_fields(
        tmp_path,
        steps=1,
        token_monitors=0,
        rollout={"prompts_per_step": 2, "concurrency": 2, "max_tokens": 8, "max_turns": 1},
    )
    run_in_process(fields)
    assert not (tmp_path / "run" / MONITORS_FILE).exists()
    rollout = next(iter(TrajectoryStore(tmp_path / "run" / "rollouts")))
    assert rollout.calls[0].top_logprobs is None
