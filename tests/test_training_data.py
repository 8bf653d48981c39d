"""Stage-1 data: builder filters, over-long policies, domain mix, BFD packing, collation, order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from longhorizon.core import ModelCall, RunProvenance, SamplingParams, Status, Trajectory, Verdict
from longhorizon.training.config import SFTConfig, load_config
from longhorizon.training.data import (
    DataConfig,
    Sample,
    build_samples,
    call_boundaries,
    load_samples,
    split_at_boundaries,
)
from longhorizon.training.loader import StepPlan
from longhorizon.training.optim import lr_factor
from longhorizon.training.packing import (
    IGNORE,
    best_fit_decreasing,
    block_causal_mask,
    collate,
    pack_samples,
)

PROVENANCE = RunProvenance(
    model="m",
    backend="hf",
    sampling=SamplingParams(seed=0),
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def chain(turns: list[tuple[list[int], list[int]]]) -> list[ModelCall]:
    """Model calls where each call extends the previous call's full sequence."""
    calls: list[ModelCall] = []
    length = 0
    for i, (prompt, completion) in enumerate(turns):
        parent = i - 1 if i else None
        calls.append(
            ModelCall(
                parent=parent, prefix_len=length, new_prompt_ids=prompt, completion_ids=completion
            )
        )
        length += len(prompt) + len(completion)
    return calls


def make_traj(
    tid: str,
    domain: str = "search",
    turns: list[tuple[list[int], list[int]]] | None = None,
    status: Status = Status.COMPLETED,
    passed: bool | None = True,
) -> Trajectory:
    verdicts = [] if passed is None else [Verdict(verifier="v", passed=passed)]
    return Trajectory(
        id=tid,
        task_id=tid,
        domain=domain,
        calls=chain(turns or [([1, 2, 3], [4, 5]), ([6, 7], [8, 9, 10])]),
        verdicts=verdicts,
        status=status,
        provenance=PROVENANCE,
    )


def ids_of(samples: list[Sample]) -> list[list[int]]:
    return [s.input_ids.tolist() for s in samples]


def masks_of(samples: list[Sample]) -> list[list[int]]:
    return [s.loss_mask.tolist() for s in samples]


# ---- builder ------------------------------------------------------------------------------
def test_samples_are_the_stored_tokens_and_masks_with_their_domain() -> None:
    (sample,) = build_samples([make_traj("a", "science")], DataConfig(), max_len=100)
    assert sample.input_ids.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert sample.loss_mask.tolist() == [0, 0, 0, 1, 1, 0, 0, 1, 1, 1]
    assert (sample.domain, sample.trajectory_id, sample.piece) == ("science", "a", 0)
    assert sample.num_trainable == 5


def test_filters_status_verdict_and_domain() -> None:
    trajs = [
        make_traj("ok"),
        make_traj("wrong", passed=False),
        make_traj("unverified", passed=None),
        make_traj("cut", status=Status.TRUNCATED),
        make_traj("aborted", status=Status.ABORTED),
        make_traj("sci", "science"),
    ]

    def kept(**kw: object) -> list[str]:
        return [s.trajectory_id for s in build_samples(trajs, DataConfig(**kw), 100)]

    assert kept() == ["ok", "sci"]
    assert kept(domains=("search",)) == ["ok"]
    assert kept(statuses=(Status.COMPLETED, Status.TRUNCATED)) == ["ok", "cut", "sci"]
    assert kept(verdict="failed") == ["wrong", "unverified"]
    assert kept(verdict="any", domains=("search",)) == ["ok", "wrong", "unverified"]


def test_samples_without_a_predictable_trained_token_are_dropped() -> None:
    # The only trained token is the first one: nothing precedes it, so nothing can predict it.
    traj = make_traj("x", turns=[([], [5]), ([6, 7], [])])
    assert build_samples([traj], DataConfig(), 100) == []


def test_overlong_drop_and_prefix() -> None:
    trajs = [make_traj("long"), make_traj("short", turns=[([1, 2], [3])])]
    assert ids_of(build_samples(trajs, DataConfig(overlong="drop"), 6)) == [[1, 2, 3]]
    prefix = build_samples(trajs, DataConfig(overlong="prefix"), 6)
    assert ids_of(prefix) == [[1, 2, 3, 4, 5, 6], [1, 2, 3]]
    assert masks_of(prefix) == [[0, 0, 0, 1, 1, 0], [0, 0, 1]]


def test_overlong_split_cuts_only_where_a_call_prompt_starts() -> None:
    turns = [([1, 2], [3, 4]), ([5], [6, 7]), ([8, 9], [10]), ([11], [12, 13, 14])]
    samples = build_samples([make_traj("s", turns=turns)], DataConfig(overlong="split"), 7)
    # Calls start at 0, 4, 7, 10; greedy pieces of <= 7 tokens: [0, 7), [7, 14).
    assert ids_of(samples) == [[1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13, 14]]
    assert masks_of(samples) == [[0, 0, 1, 1, 0, 1, 1], [0, 0, 1, 0, 1, 1, 1]]
    assert [s.piece for s in samples] == [0, 1]


def test_split_keeps_the_first_max_len_tokens_of_a_call_longer_than_max_len() -> None:
    assert split_at_boundaries(12, [0, 2], 5) == [(0, 2), (2, 7)]
    assert split_at_boundaries(10, [0, 3, 6, 8], 5) == [(0, 3), (3, 8), (8, 10)]
    assert split_at_boundaries(4, [0], 5) == [(0, 4)]


def test_call_boundaries_skip_calls_that_compaction_cut_away() -> None:
    calls = [
        ModelCall(new_prompt_ids=[1, 2], completion_ids=[3]),
        ModelCall(parent=0, prefix_len=3, new_prompt_ids=[4], completion_ids=[5]),
        # compaction: the third call keeps only the first 2 tokens of the second call's sequence
        ModelCall(parent=1, prefix_len=2, new_prompt_ids=[9], completion_ids=[10, 11]),
    ]
    assert call_boundaries(calls, 2) == [0, 2]
    assert call_boundaries(chain([([1], [2]), ([3], [4]), ([5], [6])]), 2) == [0, 2, 4]


def test_domain_mix_draws_to_the_weights_with_whole_repeats() -> None:
    trajs = [make_traj(f"s{i}", "search") for i in range(6)]
    trajs += [make_traj(f"c{i}", "science") for i in range(2)] + [make_traj("x", "coding")]
    cfg = DataConfig(mix={"search": 1.0, "science": 2.0}, mix_total=9, seed=3)
    samples = build_samples(trajs, cfg, 100)
    ids = [s.trajectory_id for s in samples]
    assert ids.count("c0") == 3 and ids.count("c1") == 3  # 6 science from 2: repeated whole
    assert len([i for i in ids if i.startswith("s")]) == 3  # 3 of 6 search, no repeat
    assert len(set(ids) & {f"s{i}" for i in range(6)}) == 3
    assert "x" not in ids  # unlisted domain
    assert ids == [s.trajectory_id for s in build_samples(trajs, cfg, 100)]  # seeded


def test_load_samples_reads_a_trajectory_store(tmp_path: Path) -> None:
    from longhorizon.core import TrajectoryStore

    with TrajectoryStore(tmp_path / "store") as store:
        store.extend([make_traj("a"), make_traj("b", "science")])
    samples = load_samples(DataConfig(paths=(tmp_path / "store",)), 100)
    assert sorted((s.trajectory_id, s.domain) for s in samples) == [
        ("a", "search"),
        ("b", "science"),
    ]


# ---- packing ------------------------------------------------------------------------------
def test_best_fit_decreasing_exact_bins() -> None:
    # Longest first: 8 -> new bin A (free 2); 5 -> new bin B (free 5); 4 -> B (free 1);
    # 3 fits nowhere -> new bin C (free 7); 2 -> A (the fullest that fits, free 0); 1 -> B.
    assert best_fit_decreasing([5, 3, 8, 2, 4, 1], 10) == [[2, 3], [0, 4, 5], [1]]
    with pytest.raises(ValueError, match="capacity"):
        best_fit_decreasing([11], 10)


def test_packing_off_gives_one_sample_per_row() -> None:
    samples = build_samples([make_traj("a"), make_traj("b")], DataConfig(), 100)
    assert pack_samples(samples, 100, packing=False) == [[0], [1]]
    assert pack_samples(samples, 100) == [[0, 1]]


def test_collate_restarts_positions_and_never_predicts_across_samples() -> None:
    a = Sample(np.array([1, 2, 3], np.int32), np.array([0, 1, 1], np.uint8), "search", "a")
    b = Sample(np.array([4, 5], np.int32), np.array([1, 1], np.uint8), "science", "b")
    batch = collate([a, b])
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 1]]
    # 3 -> 4 crosses a sample boundary, and b's first token has no context: both ignored.
    assert batch.labels.tolist() == [[2, 3, IGNORE, 5, IGNORE]]
    assert batch.domains == ["search", "science"]
    assert batch.num_trainable == 3 and batch.num_trained_samples == 2
    assert batch.token_scale("token").tolist() == [[1, 1, 0, 1, 0]]
    assert batch.token_scale("sample").tolist() == [[0.5, 0.5, 0, 1, 0]]


def test_block_causal_mask_isolates_samples() -> None:
    mask = block_causal_mask(torch.tensor([[0, 0, 1, 1, 1]]), torch.float32)
    allowed = (mask[0, 0] == 0).int().tolist()
    assert allowed == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 1, 0, 0],
        [0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1],
    ]
    assert mask.min().item() == torch.finfo(torch.float32).min


# ---- data order, schedule, config ---------------------------------------------------------
def test_step_plan_shards_a_step_across_ranks_and_pads_the_short_ones() -> None:
    rows = [[i] for i in range(7)]
    single = StepPlan(rows, batch_size=4, micro_batch_size=1, seed=1)
    ranks = [
        StepPlan(rows, batch_size=4, micro_batch_size=1, world_size=2, rank=r, seed=1)
        for r in (0, 1)
    ]
    assert single.steps_per_epoch == 2
    for step in range(4):  # two epochs, each with a short last step
        full = single.step_rows(step)
        shards = [r.rank_micro_batches(step) for r in ranks]
        assert sorted(x[0] for s in shards for x in s if x is not None) == sorted(full)
        assert len(shards[0]) == len(shards[1])
    assert ranks[1].rank_micro_batches(1) == [[single.step_rows(1)[1]], None]
    assert single.step_rows(0) != single.step_rows(2)  # each epoch has its own order
    assert sorted(single.step_rows(0) + single.step_rows(1)) == list(range(7))


def test_lr_warmup_then_cosine() -> None:
    factors = [lr_factor(s, warmup=2, total=6) for s in range(6)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[3] == pytest.approx(0.5 * (1 + np.cos(np.pi / 4)))
    assert 0 < factors[5] < factors[4] < factors[3]
    assert lr_factor(5, warmup=2, total=6, schedule="constant") == 1.0


def test_config_defaults_yaml_and_overrides(tmp_path: Path) -> None:
    default = SFTConfig()
    assert (default.lr, default.warmup_ratio, default.epochs) == (1e-5, 0.05, 1)
    assert (default.weight_decay, default.batch_size, default.max_len) == (0.1, 16, 131072)
    path = tmp_path / "c.yaml"
    path.write_text("lr: 2.0e-5\ndata:\n  paths: [a]\n  overlong: drop\n")
    cfg = load_config(SFTConfig, path, ["data.overlong=prefix", "batch_size=8"])
    assert (cfg.lr, cfg.data.overlong, cfg.batch_size) == (2e-5, "prefix", 8)
    assert cfg.data.paths == (Path("a"),)
    assert cfg.accumulation(world_size=2) == 4
    with pytest.raises(ValueError, match="multiple"):
        cfg.accumulation(world_size=3)
    with pytest.raises(ValueError):
        load_config(SFTConfig, path, ["learning_rate=1"])  # unknown fields are errors
