"""`longhorizon ablate` end to end: a 2-variant x 2-seed study on the micro recipe, SIGKILLed
after its first cell and resumed; shared stages ran once; the table's differences are those
recomputed by hand from the per-item files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.test_pipeline import MICRO


def _study(tmp_path: Path) -> Path:
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump({**MICRO, "out": "unused"}))
    study = {
        "name": "micro-loss",
        "recipe": "micro.yaml",  # relative to the study file
        "set": ["sft.max_steps=2"],  # the micro recipe, shorter still
        "seeds": [0, 1],
        "baseline": "sva",
        "variants": {"sva": ["distill.loss.kind=sva"], "tail": ["distill.loss.kind=sva_tail"]},
        "out": str(tmp_path / "study"),
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _ablate(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "longhorizon.cli.main", "ablate", str(path)]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)


def _ledger(out: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in (out / "stages.jsonl").read_text().splitlines()]


def _item_means_by_hand(out: Path, cell: dict[str, object]) -> dict[str, float]:
    """Item id -> score straight from the items file (one decoding seed in the micro recipe)."""
    (path,) = cell["items"]  # type: ignore[misc]
    lines = (out / str(path)).read_text().splitlines()
    return {json.loads(x)["item_id"]: float(json.loads(x)["score"]) for x in lines}


def test_study_is_killed_resumed_shares_stages_and_reports_paired_differences(
    tmp_path: Path,
) -> None:
    path = _study(tmp_path)
    out = tmp_path / "study"

    killed = _ablate(path, LONGHORIZON_ABLATE_KILL_AFTER="5")
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    first = _ledger(out)
    assert [r["stage"] for r in first] == ["synth", "sft", "teachers", "distill", "eval"]
    assert {r["cell"] for r in first} == {"sva/seed0"}  # seed-major: tail/seed0 is next
    assert not (out / "results.json").exists()

    resumed = _ablate(path)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "synth synth-" in resumed.stdout and "done earlier, shared" in resumed.stdout
    ledger = _ledger(out)
    assert ledger[:5] == first  # the killed run's records stand
    keys = Counter(str(r["key"]) for r in ledger)
    assert set(keys.values()) == {1}  # every stage ran once, across both processes
    per_stage = Counter(str(r["stage"]) for r in ledger)
    assert per_stage == {"synth": 2, "sft": 2, "teachers": 2, "distill": 4, "eval": 4}
    shared_by = {str(r["cell"]) for r in ledger if r["stage"] in ("synth", "sft", "teachers")}
    assert shared_by == {"sva/seed0", "sva/seed1"}  # the tail cells reused them

    results = json.loads((out / "results.json").read_text())
    assert len(results["stage_code_versions"]) == 1  # both processes ran the same code
    benches = results["benches"]
    assert benches == ["instruction-heldout", "search-heldout"]
    cells = {(c["variant"], c["seed"], c["bench"]): c for c in results["cells"]}
    assert len(cells) == 2 * 2 * 2
    table = (out / "table.txt").read_text()
    by_bench = {}
    for bench in benches:
        per_seed = []
        for seed in (0, 1):
            tail = _item_means_by_hand(out, cells["tail", seed, bench])
            base = _item_means_by_hand(out, cells["sva", seed, bench])
            assert cells["tail", seed, bench]["mean"] == pytest.approx(
                sum(tail.values()) / len(tail)
            )
            diffs = [tail[i] - base[i] for i in tail if i in base]
            per_seed.append(sum(diffs) / len(diffs))
        by_bench[bench] = sum(per_seed) / 2
        reported = results["comparisons"]["tail"][bench]
        assert reported["mean"] == pytest.approx(by_bench[bench], abs=1e-12)
        assert reported["per_seed"] == pytest.approx(per_seed, abs=1e-12)
        assert f"{by_bench[bench]:+.3f} [" in table
    average = sum(by_bench.values()) / 2
    assert results["comparisons"]["tail"]["average"]["mean"] == pytest.approx(average, abs=1e-12)
    assert f"{average:+.3f} [" in table
    assert "Minimum detectable effect" in table and "Holm" not in table  # one comparison
    assert (out / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    again = _ablate(path)  # a finished study recomputes nothing
    assert again.returncode == 0, again.stderr[-2000:]
    assert _ledger(out) == ledger
    assert json.loads((out / "results.json").read_text())["comparisons"] == results["comparisons"]


def test_reuse_fills_the_cache_from_a_finished_run(tmp_path: Path, micro_run_dir: Path) -> None:
    """`--reuse RUN`: the run's stages that match the baseline cell's keys are copied in (its
    evaluation too) and only the other variant's OPD and evaluation run; `--seeds` narrows
    the grid; a folder that is no run is refused before anything is written."""
    run_dir = micro_run_dir  # read only
    shutil.copy(run_dir / "recipe.yaml", tmp_path / "micro.yaml")  # the run's own recipe
    out = tmp_path / "study"
    study = {
        "name": "micro-reuse",
        "recipe": "micro.yaml",
        "seeds": [0, 1],
        "baseline": "sva",  # the micro recipe's own objective: the run is this cell
        "variants": {"sva": ["distill.loss.kind=sva"], "tail": ["distill.loss.kind=sva_tail"]},
        "out": str(out),
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    ablate = [sys.executable, "-m", "longhorizon.cli.main", "ablate", str(path), "--seeds", "0"]

    refused = subprocess.run([*ablate, "--reuse", str(tmp_path)], capture_output=True, text=True)
    assert refused.returncode == 2 and "not a `longhorizon run` folder" in refused.stderr
    assert not out.exists()

    done = subprocess.run([*ablate, "--reuse", str(run_dir)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ledger = _ledger(out)
    reused = [r for r in ledger if r.get("reused_from") == str(run_dir)]
    ran = [r for r in ledger if "reused_from" not in r]
    assert [r["stage"] for r in reused] == ["synth", "sft", "teachers", "distill", "eval"]
    assert [(r["stage"], r["cell"]) for r in ran] == [
        ("distill", "tail/seed0"),
        ("eval", "tail/seed0"),
    ]
    version = json.loads((run_dir / "stages.json").read_text())["code_version"]
    assert {r["code_version"] for r in reused} == {version}
    results = json.loads((out / "results.json").read_text())
    assert {c["seed"] for c in results["cells"]} == {0}
    cell = next(
        c for c in results["cells"] if c["variant"] == "sva" and c["bench"] == "search-heldout"
    )
    copied = _item_means_by_hand(out, cell)
    original = run_dir / "eval" / "distilled" / "search-heldout"
    items = [json.loads(x) for p in sorted(original.glob("*items*.jsonl")) for x in p.open()]
    assert copied == {x["item_id"]: float(x["score"]) for x in items}  # the run's own scores
