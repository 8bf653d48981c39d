"""OPD with `rollout.max_staleness: 1`: the next step's rollouts run during this step's update,
one policy version behind. Checked: which policy sampled each step (recorded, and re-derived
from the stored episodes' logprobs), the engine-vs-trainer KL, every episode stored once, and
exact resume after a SIGKILL that leaves the next step's batch half rolled out."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from longhorizon.core import Trajectory, TrajectoryStore
from longhorizon.distill.config import DistillConfig, RolloutConfig
from longhorizon.distill.mismatch import engine_kl
from longhorizon.distill.opd import KILL_ENV
from longhorizon.distill.rollouts import POLICY_VERSION, rollout_samples
from longhorizon.training.metrics import read_metrics
from tests.test_distill_opd import DISTILL_SCRIPT, launch, opd_fields, run_in_process

ROLLOUT = {"prompts_per_step": 4, "temperature": 1.0, "concurrency": 1}  # opd_fields' own
STALE = {**ROLLOUT, "max_staleness": 1}
# An engine that holds the trainer's weights differs from it by float rounding only
# (batched sampling vs one padded forward pass); one lr-1e-3 update moves it far more.
SAME_WEIGHTS_KL = 1e-5


def test_max_staleness_stays_out_of_the_dump_at_its_default(tmp_path: Path) -> None:
    assert "max_staleness" not in RolloutConfig().model_dump()
    assert RolloutConfig(max_staleness=1).model_dump()["max_staleness"] == 1
    on = DistillConfig.model_validate(opd_fields(tmp_path))
    zero = DistillConfig.model_validate(
        opd_fields(tmp_path, rollout={**ROLLOUT, "max_staleness": 0})
    )
    stale = DistillConfig.model_validate(opd_fields(tmp_path, rollout=STALE))
    assert zero.to_yaml() == on.to_yaml() and zero.fingerprint() == on.fingerprint()
    assert stale.fingerprint() != on.fingerprint()  # it changes the loss curve


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"rollout": {"max_staleness": 2}}, r"max_staleness: 2 is not built: 0 \(on-policy\) or 1"),
        (
            {"rollout": {"max_staleness": 1, "refresh_every": 2}},
            "refresh_every: 2 would sample 2 versions behind: set rollout.refresh_every: 1",
        ),
    ],
)
def test_unbuilt_staleness_settings_are_refused(
    tmp_path: Path, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        DistillConfig.model_validate(opd_fields(tmp_path, **extra))


def stored_by_step(run: Path) -> dict[int, list[Trajectory]]:
    by_step: dict[int, list[Trajectory]] = {}
    for traj in TrajectoryStore(run / "rollouts"):
        step = int(traj.id.split("@step")[1].split(".")[0])
        by_step.setdefault(step, []).append(traj)
    return by_step


def sampled_kl(
    weights: dict[str, torch.Tensor] | None, path: str, trajs: list[Trajectory]
) -> float:
    """The engine-vs-trainer KL of `trajs` against the model at `path` with `weights` loaded."""
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    if weights is not None:
        model.load_state_dict(weights)
    gap = engine_kl(model, rollout_samples(trajs), 4, 0)
    assert gap is not None
    return float(gap["kl"])


def test_stale_rollouts_are_sampled_one_version_behind(
    tmp_path: Path, tiny_llama_path: str
) -> None:
    run_in_process(opd_fields(tmp_path, rollout=STALE, save_every=1, keep_checkpoints=3))
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records] == [1, 2, 3]  # as many steps as an on-policy run
    engine = [r["engine"] for r in records]
    # Step t+1 (logged as t+2) trains version t+1 on episodes version t sampled.
    assert [e["policy_version"] for e in engine] == [0, 0, 1]
    assert [e["staleness"] for e in engine] == [0, 1, 1]
    assert [e["version"] for e in engine[1:]] == [1, 2]  # synced for the next step's rollouts
    assert abs(engine[0]["kl"]) < SAME_WEIGHTS_KL < min(abs(e["kl"]) for e in engine[1:])
    assert all(e["tokens"] > 0 for e in engine)
    assert set(records[0]["phase_seconds"]) == {"rollout", "score", "train", "overlap_wait"}
    by_step = stored_by_step(tmp_path / "run")
    ids = [t.id for ts in by_step.values() for t in ts]
    assert len(ids) == len(set(ids)) == 12  # 3 steps x 4 episodes, each stored once
    assert {s: {t.metadata[POLICY_VERSION] for t in ts} for s, ts in by_step.items()} == {
        0: {0},
        1: {0},
        2: {1},
    }
    # The logprobs stored with step 1's episodes are the starting student's, step 2's those of
    # the student after one update (checkpoint step-1), not after two.
    assert abs(sampled_kl(None, tiny_llama_path, by_step[1])) < SAME_WEIGHTS_KL
    one = torch.load(tmp_path / "run" / "checkpoints" / "step-00000001" / "model.pt")
    assert abs(sampled_kl(one, tiny_llama_path, by_step[2])) < SAME_WEIGHTS_KL
    two = torch.load(tmp_path / "run" / "checkpoints" / "step-00000002" / "model.pt")
    assert abs(sampled_kl(two, tiny_llama_path, by_step[2])) > SAME_WEIGHTS_KL


def drop_episodes_of_step(rollouts: Path, step: int) -> int:
    """Remove step `step`'s episodes from the store's shards, as if a kill had cut its rollouts
    short; returns how many were removed."""
    removed = 0
    for shard in rollouts.glob("part-*.jsonl"):
        kept = []
        for line in shard.read_text().splitlines(keepends=True):
            if f"@step{step}." in json.loads(line)["id"]:
                removed += 1
            else:
                kept.append(line)
        shard.write_text("".join(kept))
    return removed


def test_resume_with_a_batch_in_flight_reproduces_the_stale_run(tmp_path: Path) -> None:
    fields = opd_fields(tmp_path, steps=4, save_every=2, minibatches=2, rollout=STALE)
    run_in_process({**fields, "output_dir": str(tmp_path / "baseline")})
    config = tmp_path / "distill.yaml"
    config.write_text(json.dumps(fields))
    script = [sys.executable, "-c", DISTILL_SCRIPT, str(config)]
    killed = launch(script, {KILL_ENV: "3"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    # Killed after logging step 3, resumed from the checkpoint after step 2. Episodes `@step2`
    # (rolled out during the 2nd update) are reused; `@step3` (rolled out during the 3rd, after
    # the checkpoint) are dropped, as if the kill had cut them short: rolled out again.
    assert drop_episodes_of_step(tmp_path / "run" / "rollouts", 3) == 4
    resumed = launch(script)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and "step-00000002" in resumed.stdout
    got, want = read_metrics(tmp_path / "run"), read_metrics(tmp_path / "baseline")
    assert [r["step"] for r in got] == [1, 2, 3, 4]  # no duplicated step
    assert [r["loss"] for r in got] == [r["loss"] for r in want]  # bit for bit
    assert [r["domains"] for r in got] == [r["domains"] for r in want]
    assert [r["engine"]["kl"] for r in got] == [r["engine"]["kl"] for r in want]
    assert [r["engine"]["policy_version"] for r in got] == [0, 0, 1, 2]
    by_step = stored_by_step(tmp_path / "run")
    ids = [t.id for ts in by_step.values() for t in ts]
    assert len(ids) == len(set(ids)) == 16  # reused or rolled out again, never twice
    assert {t.metadata[POLICY_VERSION] for t in by_step[3]} == {2}  # the resumed engine's
