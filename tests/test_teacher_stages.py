"""Stage-2 teachers as stage lists ([sft] or [sft, grpo]): recipe validation, content keys,
rewards (all vs fraction), PAPO wired into the GRPO step, and the stage layout with resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from typer.testing import CliRunner

import longhorizon.rl.grpo as grpo_module
from longhorizon.ablate.keys import cell_keys
from longhorizon.cli.main import app
from longhorizon.core import Status, Task, Trajectory, TrajectoryStore, Verdict
from longhorizon.domains.instruction.verify import verify_instruction
from longhorizon.pipeline.recipe import Recipe, find_recipe, load_recipe
from longhorizon.pipeline.teachers import verdict_kinds
from longhorizon.rl import GRPOObjective, VerdictKinds, rollout_reward
from longhorizon.rl.grpo import KILL_ENV
from longhorizon.rl.objective import papo_advantages
from longhorizon.training.metrics import read_metrics
from longhorizon.training.sft import SFT_METADATA
from longhorizon.training.teach import find_teachers, read_teacher, stage_configs
from longhorizon.verifiers import verify_answer
from tests.test_pipeline import MICRO
from tests.test_rl_grpo import run_in_process, tool_fields

# The keys of the built-in tiny recipe's stages as computed on main before teacher stages
# existed (commit bf19f35): SFT-only teachers must keep them, or every cache is orphaned.
TINY_KEYS = {
    "synth": "synth-9e658e984123d822",
    "sft": "sft-550670382023a5a2",
    "teachers": "teachers-3a74d1a3f16422f3",
    "distill": "distill-708eef9e8c97bc82",
}
TINY_TEACHER_EVAL = "eval-5c29871263042199"  # teacher-instruction's evaluation


def _recipe(**teachers: Any) -> dict[str, Any]:
    return {**MICRO, "out": "runs/x", "teachers": {**MICRO["teachers"], **teachers}}


# ---- content keys --------------------------------------------------------------------------
def test_sft_only_teachers_keep_their_keys() -> None:
    tiny = load_recipe(find_recipe("tiny"))
    keys = cell_keys(tiny)
    assert keys.stages == TINY_KEYS
    assert keys.evals["teacher-instruction"] == TINY_TEACHER_EVAL
    # Spelling the default out changes nothing; nor do GRPO overrides no teacher uses.
    explicit = dict(tiny.teachers)
    explicit["stages"] = {"instruction": ["sft"], "search": ["sft"]}
    explicit["grpo"] = {"steps": 3}
    same = tiny.model_copy(update={"teachers": explicit})
    assert cell_keys(Recipe.model_validate(same.model_dump())).stages == TINY_KEYS
    # tiny-grpo shares synthesis and SFT with tiny; its GRPO teacher has a key of its own.
    rl = cell_keys(load_recipe(find_recipe("tiny-grpo")))
    assert {s: rl.stages[s] for s in ("synth", "sft")} == {
        s: TINY_KEYS[s] for s in ("synth", "sft")
    }
    assert rl.stages["teachers"] != TINY_KEYS["teachers"]
    assert rl.evals["teacher-instruction"] != TINY_TEACHER_EVAL


# ---- validation ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("teachers", "message"),
    [
        ({"stages": {"instruction": ["sft", "ppo"]}}, "unknown stage(s) ['ppo']; stages are sft"),
        ({"stages": {"instruction": ["grpo", "sft"]}}, "grpo trains from the SFT teacher"),
        (
            {"stages": {"instruction": ["grpo"]}},
            "a teacher is one of [sft], [sft, grpo], [sft-reasoning, sft-tools], "
            "[sft-reasoning, sft-tools, grpo]",
        ),
        ({"stages": {"instruction": ["sft-tools", "sft-reasoning"]}}, "a teacher is one of"),
        (
            {"stages": {"instruction": ["sft-reasoning", "sft-tools"]}, "generalist": True},
            "teachers.stages gives ['instruction'] two SFT stages, but teachers.generalist",
        ),
        ({"stages": {"chess": ["sft", "grpo"]}}, "teachers.stages names domain(s) ['chess']"),
        ({"grpo": {"stepz": 3}}, "teachers.grpo: 1 validation error for RLConfig\nstepz"),
        ({"grpo": {"model": "other"}}, "teachers.grpo sets ['model']: the pipeline sets"),
        (
            {
                "stages": {"instruction": ["sft", "grpo"]},
                "grpo": {"objective": {"advantage": "papo"}},
            },
            "advantage = papo needs rubric checks (the process reward); the verifier of "
            "['instruction'] has none",
        ),
        (
            {"grpo": {"objective": {"advantage": "papo", "reward": "fraction"}}},
            "it needs objective.reward = all",
        ),
        (
            {"stages": {"instruction": ["sft", "grpo"]}, "grpo_domains": {"search": {}}},
            "teachers.grpo_domains names ['search'], which have no grpo stage",
        ),
        (
            {
                "stages": {"instruction": ["sft", "grpo"]},
                "grpo_domains": {"instruction": {"objective": {"advantage": "papo"}}},
            },
            "teachers.grpo_domains.instruction over teachers.grpo: objective.advantage = papo "
            "needs rubric checks",
        ),
        (
            {"stages": {"instruction": ["sft", "grpo"]}, "generalist": True},
            "teachers.stages gives ['instruction'] a grpo stage, but teachers.generalist",
        ),
    ],
)
def test_bad_teacher_stages_name_the_problem(teachers: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Recipe.model_validate(_recipe(**teachers))
    assert message in str(info.value)


def test_grpo_domains_merge_over_the_shared_grpo_overrides() -> None:
    from longhorizon.pipeline.stages import plan

    teachers = {
        "stages": {"instruction": ["sft", "grpo"], "search": ["sft", "grpo"]},
        "grpo": {"steps": 3, "lr": 1e-4, "objective": {"reward": "all", "kl_coef": 0.0}},
        "grpo_domains": {"search": {"steps": 5, "objective": {"kl_coef": 0.01}}},
    }
    configs = plan(Recipe.model_validate(_recipe(**teachers)), "student").teacher_grpo
    assert (configs["instruction"].steps, configs["search"].steps) == (3, 5)
    assert configs["search"].lr == configs["instruction"].lr == 1e-4  # shared, not overridden
    assert configs["instruction"].objective.kl_coef == 0.0
    assert configs["search"].objective.kl_coef == 0.01  # merged key by key
    assert configs["search"].objective.reward == "all"


def test_two_stage_teachers_filter_by_tool_use_and_grpo_starts_from_the_last() -> None:
    """[sft-reasoning, sft-tools]: traces without a tool call, then with one; GRPO after them
    starts from the second stage's model. [sft] and [sft, grpo] keep their folders and data."""
    from longhorizon.pipeline.stages import plan

    teachers = {
        "stages": {"search": ["sft-reasoning", "sft-tools", "grpo"], "instruction": ["sft"]},
        "grpo": {"steps": 3},
    }
    p = plan(Recipe.model_validate(_recipe(**teachers)), "student")
    search, instruction = p.teachers["search"], p.teachers["instruction"]
    assert [(s.name, s.data.tool_use) for s in search.stages] == [
        ("reasoning", "without"),
        ("tools", "with"),
    ]
    assert [(s.name, s.data.tool_use) for s in instruction.stages] == [("instruction", "any")]
    root = Path("runs/x/teachers/search")
    assert Path(p.teacher_grpo["search"].model) == root / "stage-2-tools" / "final"
    assert Path(p.teacher_grpo["search"].final_dir) == root / "teacher"
    dirs = [c.output_dir for c in stage_configs(search)]
    assert dirs == [root / "stage-1-reasoning", root / "stage-2-tools"]
    assert "instruction" not in p.teacher_grpo


def test_dry_run_shows_the_validation_error_and_the_grpo_plan(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_recipe(stages={"instruction": ["grpo", "sft"]})))
    result = CliRunner().invoke(app, ["run", str(bad), "--dry-run"])
    assert result.exit_code == 2
    assert "grpo trains from the SFT" in " ".join(result.output.split())
    good = CliRunner().invoke(app, ["run", "tiny-grpo", "--dry-run"], env={"COLUMNS": "400"})
    assert good.exit_code == 0, good.output
    assert "then grpo 30 steps x 8 prompts x 8 rollouts" in good.output
    assert "teachers/instruction/stage-1-sft/final" in good.output


# ---- rewards -------------------------------------------------------------------------------
def _instruction_task() -> Task:
    ids = ["punctuation:no_comma", "change_case:english_lowercase"]
    spec = {"name": "ifeval", "params": {"instruction_id_list": ids, "kwargs": [{}, {}]}}
    return Task.model_validate(
        {"id": "if-1", "domain": "instruction", "instruction": "Say hi.", "verifiers": [spec]}
    )


def _trajectory(verdicts: list[Verdict], status: Status = Status.COMPLETED) -> Trajectory:
    return Trajectory.model_validate(
        {
            "id": "t",
            "task_id": "if-1",
            "domain": "instruction",
            "verdicts": [v.model_dump() for v in verdicts],
            "status": status,
            "provenance": {"model": "hand", "backend": "hand"},
        }
    )


def test_reward_all_vs_fraction_from_the_instruction_verifier() -> None:
    # lowercase without a comma, then with one: one of the two instructions followed.
    task, kinds = _instruction_task(), verdict_kinds()["instruction"]
    assert kinds == VerdictKinds(summaries=frozenset({"ifeval_all"}))
    both = _trajectory(verify_instruction(task, "hello there"))
    half = _trajectory(verify_instruction(task, "hello, there"))
    all_, fraction = GRPOObjective(), GRPOObjective(reward="fraction")
    assert [rollout_reward(t, all_, kinds) for t in (both, half)] == [1.0, 0.0]
    assert [rollout_reward(t, fraction, kinds) for t in (both, half)] == [1.0, 0.5]
    # Without the domain's kinds the summary verdict would count as a third constraint.
    assert rollout_reward(half, fraction) == pytest.approx(1 / 3)
    # A truncated rollout follows `overlong` whatever the reward.
    cut = _trajectory(half.verdicts, Status.TRUNCATED)
    assert rollout_reward(cut, fraction, kinds) is None


# ---- PAPO in a GRPO step -------------------------------------------------------------------
RUBRIC = frozenset({"rubric:tool", "rubric:brief"})


def rubric_verify(task: Task, traj: Trajectory) -> list[Verdict]:
    """The answer's verdicts, then two rubric checks over the steps."""
    return [
        *verify_answer(task, traj),
        Verdict(verifier="rubric:tool", passed=bool(traj.steps)),
        Verdict(verifier="rubric:brief", passed=traj.usage.completion_tokens <= 24),
    ]


def test_papo_advantages_in_a_step_equal_the_pure_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: list[Any] = []
    real = grpo_module.optimizer_update

    def spy(*args: Any) -> dict[str, Any]:
        captured.extend(args[4])  # the step's samples
        return real(*args)

    monkeypatch.setattr(grpo_module, "optimizer_update", spy)
    fields = tool_fields(tmp_path, steps=1, objective={"advantage": "papo", "overlong": "keep"})
    fields["rollout"] = {"prompts_per_step": 2, "group_size": 4, "dynamic_sampling": False}
    kinds = {d: VerdictKinds(rubric=RUBRIC) for d in ("arith", "maths")}
    threads = torch.get_num_threads()
    try:
        grpo_module.run_rl(grpo_module.RLConfig.model_validate(fields), rubric_verify, None, kinds)
    finally:
        torch.set_num_threads(threads)
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for traj in TrajectoryStore(tmp_path / "run" / "rollouts"):
        groups[traj.task_id.split("@")[0]].append(traj)
    want: dict[str, float] = {}
    for group in groups.values():
        group.sort(key=lambda t: t.id)
        outcome = [
            float(all(v.passed for v in t.verdicts if v.verifier not in RUBRIC)) for t in group
        ]
        process = [sum(v.passed for v in t.verdicts if v.verifier in RUBRIC) / 2 for t in group]
        adv = papo_advantages(
            torch.tensor(outcome, dtype=torch.float64), torch.tensor(process, dtype=torch.float64)
        )
        want |= {t.id: a for t, a in zip(group, adv.tolist(), strict=True)}
    assert captured and len(groups) == 2
    assert {s.trajectory_id: s.advantage for s in captured} == {
        i: a for i, a in want.items() if i in {s.trajectory_id for s in captured}
    }
    assert any(a != 0 for a in want.values())
    record = read_metrics(tmp_path / "run")[0]
    assert 0 <= record["process_mean"] <= 1


def test_papo_is_refused_for_a_domain_without_rubrics(tmp_path: Path) -> None:
    fields = tool_fields(tmp_path, steps=1, objective={"advantage": "papo"})
    kinds = {"arith": VerdictKinds(rubric=RUBRIC)}  # maths has none
    with pytest.raises(ValueError, match=r"the verifier of domain\(s\) \['maths'\] has none"):
        run_in_process(fields | {"model": "tiny-tool-caller"}, verify_answer, kinds)


# ---- layout and resume ---------------------------------------------------------------------
STAGES_SCRIPT = (
    "import sys\n"
    "from pathlib import Path\n"
    "from longhorizon.pipeline.recipe import load_recipe\n"
    "from longhorizon.pipeline.run import run_sft_stage, run_synth, run_teachers, "
    "student_checkpoint\n"
    "from longhorizon.pipeline.stages import plan\n"
    "recipe = load_recipe(Path(sys.argv[1]))\n"
    "p = plan(recipe, student_checkpoint(recipe))\n"
    "if not (p.sft.final_path / 'config.json').exists():\n"
    "    run_synth(p)\n"
    "    run_sft_stage(p)\n"
    "run_teachers(p)\n"
)


def test_grpo_teacher_layout_and_resume_after_a_kill_in_stage_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    recipe = {
        **MICRO,
        "out": str(out),
        "synth": {
            "domains": {"instruction": 6},
            "levels": {"instruction": MICRO["synth"]["levels"]["instruction"]},
        },  # type: ignore[index]
        "sft": {**MICRO["sft"], "max_steps": 2},  # type: ignore[dict-item]
        "teachers": {
            **MICRO["teachers"],  # type: ignore[dict-item]
            "stages": {"instruction": ["sft", "grpo"]},
            "grpo": {
                "steps": 2,
                "lr": 1e-3,
                "save_every": 1,
                "micro_batch_size": 4,
                "tensorboard": False,
                "num_threads": 1,
                "rollout": {
                    "prompts_per_step": 2,
                    "group_size": 2,
                    "max_tries": 1,
                    "max_tokens": 8,
                },
            },
        },
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    command = [sys.executable, "-c", STAGES_SCRIPT, str(path)]
    killed = subprocess.run(command, capture_output=True, text=True, env={**env, KILL_ENV: "1"})
    assert killed.returncode != 0, killed.stdout[-2000:] + killed.stderr[-2000:]
    root = out / "teachers" / "instruction"
    assert (root / "stage-1-sft" / "final" / "config.json").exists()
    assert (root / "stage-2-grpo" / "checkpoints").is_dir()
    assert not (root / "teacher").exists()
    sft_metrics = root / "stage-1-sft" / "metrics.jsonl"
    stamp = sft_metrics.stat().st_mtime_ns

    resumed = subprocess.run(command, capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    text = " ".join(resumed.stdout.split())
    assert "stage-1-sft/final exists: nothing to train" in text  # stage 1 not redone
    assert "resumed from" in text  # stage 2 continued from its step-1 checkpoint
    assert sft_metrics.stat().st_mtime_ns == stamp
    assert [r["step"] for r in read_metrics(root / "stage-2-grpo")] == [1, 2]
    assert sorted(p.name for p in root.iterdir()) == ["stage-1-sft", "stage-2-grpo", "teacher"]
    info = read_teacher(root / "teacher")
    assert [s["name"] for s in info.stages] == ["sft", "grpo"]
    assert json.loads((root / "teacher" / "longhorizon_rl.json").read_text())["steps"] == 2
    assert find_teachers(out / "teachers") == {"instruction": root / "teacher"}

    again = subprocess.run(command, capture_output=True, text=True, env=env)
    assert again.returncode == 0
    assert "teacher exists: nothing to train" in " ".join(again.stdout.split())


def test_two_stage_science_teacher_trains_reasoning_then_tool_traces(tmp_path: Path) -> None:
    """The report's science teacher: stage 1 on no-tool traces from the SFT student, stage 2 on
    tool traces from stage 1's model; the teacher's metadata lists both, with their data."""
    from longhorizon.pipeline.run import run_sft_stage, run_synth, run_teachers
    from longhorizon.pipeline.stages import plan
    from longhorizon.training.data import load_trajectories

    out = tmp_path / "run"
    recipe = {
        **MICRO,
        "out": str(out),
        "synth": {"domains": {"science": 12}, "levels": {"science": {"materials": 10}}},
        "sft": {**MICRO["sft"], "max_steps": 1},  # type: ignore[dict-item]
        "teachers": {
            **MICRO["teachers"],  # type: ignore[dict-item]
            "max_steps": 1,
            "stages": {"science": ["sft-reasoning", "sft-tools"]},
        },
    }
    p = plan(Recipe.model_validate(recipe), "tiny-llama")
    run_synth(p)
    run_sft_stage(p)
    run_teachers(p)
    root = out / "teachers" / "science"
    assert sorted(d.name for d in root.iterdir()) == [
        "stage-1-reasoning",
        "stage-2-tools",
        "teacher",
    ]
    first, second = stage_configs(p.teachers["science"])
    assert first.model == str(p.sft.final_path) and second.model == str(first.final_path)
    assert (first.final_path / "config.json").exists()
    info = read_teacher(root / "teacher")
    assert [s["name"] for s in info.stages] == ["reasoning", "tools"]
    # what each stage trained on: the run's own sample counts, against the store
    trajs = [t for t in load_trajectories([out / "synth" / "science" / "trajectories"]) if t.passed]
    tools = sum(bool(t.steps) for t in trajs)
    assert 0 < tools < len(trajs)
    stage_dirs = (first.final_path, root / "teacher")
    samples = [
        json.loads((d / SFT_METADATA).read_text())["domains"]["science"]["samples"]
        for d in stage_dirs
    ]
    assert samples == [len(trajs) - tools, tools]


def test_teach_cli_runs_sft_then_grpo_into_one_teacher(micro_run_dir: Path, tmp_path: Path) -> None:
    """`longhorizon teach` with `grpo:` trains the SFT stage, then GRPO from its model on the
    given tasks; the teacher is GRPO's final model and its metadata lists both stages."""
    synth = micro_run_dir / "synth" / "instruction"
    grpo = {
        "tasks": [str(synth / "tasks")],
        "steps": 1,
        "lr": 1e-3,
        "micro_batch_size": 4,
        "tensorboard": False,
        "num_threads": 1,
        "rollout": {"prompts_per_step": 2, "group_size": 2, "max_tries": 1, "max_tokens": 8},
    }
    config = {
        "init": str(micro_run_dir / "sft" / "final"),
        "output_dir": str(tmp_path / "teachers"),
        "sft": {"max_len": 96, "batch_size": 2, "max_steps": 1, "tensorboard": False},
        "stages": [{"name": "sft", "data": {"paths": [str(synth / "trajectories")]}}],
        "grpo": grpo,
    }
    path = tmp_path / "teach.yaml"
    path.write_text(yaml.safe_dump(config))
    args = ["teach", "--domain", "instruction", "--config", str(path)]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    root = tmp_path / "teachers" / "instruction"
    assert f"model: {root / 'stage-1-sft' / 'final'}" in dry.output
    assert f"final_dir: {root / 'teacher'}" in dry.output and not root.exists()
    bad = CliRunner().invoke(app, [*args, "--set", "grpo.output_dir=x", "--dry-run"])
    assert bad.exit_code != 0 and "grpo sets ['output_dir']: teach sets these" in bad.output

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in root.iterdir()) == ["stage-1-sft", "stage-2-grpo", "teacher"]
    assert (root / "stage-1-sft" / "final" / "config.json").exists()
    assert [r["step"] for r in read_metrics(root / "stage-2-grpo")] == [1]
    info = read_teacher(root / "teacher")
    assert info.domain == "instruction" and [s["name"] for s in info.stages] == ["sft", "grpo"]
    assert find_teachers(tmp_path / "teachers") == {"instruction": root / "teacher"}
