"""`eval --ray` on the real local Ray cluster (2 one-CPU workers on 127.0.0.1): a held-out
bench's episodes run on `rollout --ray`'s workers, each opening the model (the seeded 7M
`tiny-tool-caller`) and building the tool domain's verifier and world itself; the items and
episodes equal the single-process run's, each stored once."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from tests.test_ray_synth import run_ok, stored_ids

BENCH = "tool-heldout"


def eval_cmd(out: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "longhorizon.cli.main", "eval", "--model", "tiny-tool-caller"]
    return [*cmd, "--bench", BENCH, "--limit", "6", "--max-tokens", "16", "--out", str(out), *extra]


def items(out: Path) -> list[tuple[str, float, str | None, str]]:
    rows = [json.loads(line) for line in (out / BENCH / "items-seed0.jsonl").open()]
    return sorted(
        (r["item_id"], r["score"], r["prediction"], json.dumps(r["details"], sort_keys=True))
        for r in rows
    )


def test_cli_eval_ray_equals_the_single_process_run(ray_cluster: str, tmp_path: Path) -> None:
    run_ok(eval_cmd(tmp_path / "one"))
    cmd = eval_cmd(tmp_path / "ray", "--ray", ray_cluster, "--workers", "2")
    done = run_ok(cmd)
    assert len(items(tmp_path / "ray")) == 6
    assert items(tmp_path / "ray") == items(tmp_path / "one")
    ids = stored_ids(tmp_path / "ray" / BENCH / "trajectories-seed0")
    assert ids == stored_ids(tmp_path / "one" / BENCH / "trajectories-seed0")
    assert ids == Counter({f"{item[0]}#0": 1 for item in items(tmp_path / "one")})
    assert "ran 6, reused 0" in done.stdout

    assert "ran 0, reused 6" in run_ok(cmd).stdout  # a rerun resumes: nothing runs twice
    assert sum(stored_ids(tmp_path / "ray" / BENCH / "trajectories-seed0").values()) == 6
