"""`longhorizon run RECIPE --smoke`: every size scaled down, the recipe's wiring kept; and
`launch.nproc_per_node`, which runs the training stages under torchrun. (The whole agents-a1
smoke run is a step of .ci/run, under a 10-minute limit.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.pipeline.recipe import Recipe, StudentSpec, find_recipe, load_recipe
from longhorizon.pipeline.smoke import (
    SERVED,
    needs_server,
    smoke_recipe,
    tiny_family,
)
from longhorizon.pipeline.stages import plan


def agents_a1_smoke(out: Path) -> Recipe:
    return smoke_recipe(load_recipe(find_recipe("agents-a1")), out)


def test_agents_a1_scales_down_and_keeps_its_stages_objectives_and_parallelism(
    tmp_path: Path,
) -> None:
    full = load_recipe(find_recipe("agents-a1"))
    smoke = agents_a1_smoke(tmp_path / "smoke")
    assert (smoke.name, smoke.out, smoke.smoke) == ("agents-a1-smoke", tmp_path / "smoke", True)
    assert smoke.student.tiny is not None and smoke.student.tiny.architecture == "qwen3_5_moe"
    assert (full.launch.nproc_per_node, smoke.launch.nproc_per_node) == (8, 2)
    assert smoke.synth.domains == dict.fromkeys(full.synth.domains, 4)
    search = smoke.synth.level("search")
    assert (search.entities, search.hops) == (300, (1, 2))  # type: ignore[attr-defined]
    p = plan(smoke, smoke.student.name())
    assert (p.sft.max_len, p.sft.batch_size, p.sft.parallel) == (2048, 2, "fsdp2")
    assert (p.sft.packing, p.sft.gradient_checkpointing) == (False, True)
    assert p.teachers["science"].stages[0].name == "reasoning"  # two SFT stages, as the recipe
    assert sorted(p.teacher_grpo) == ["instruction", "search", "tool"]
    tool, search_rl = p.teacher_grpo["tool"], p.teacher_grpo["search"]
    assert (tool.steps, tool.rollout.prompts_per_step, tool.rollout.group_size) == (1, 2, 2)
    assert (tool.objective.advantage, tool.objective.process_weight) == ("papo", 0.5)
    assert tool.objective.tis_cap == 2.0 and tool.parallel == "fsdp2"
    assert search_rl.objective.shaping is not None
    assert search_rl.rollout.prefilter_attempts == 0  # a random model would pass none
    assert not tool.rollout.dynamic_sampling  # so all-fail groups still make an update
    assert tool.objective.overlong == "keep"  # and so do rollouts cut at 48 tokens
    # Qwen3.5 does not run on vLLM's CPU build: its rollouts and the teachers stay in process
    assert tool.rollout.backend == "hf" and p.distill.rollout.backend == "hf"
    assert {t.backend for t in p.distill.teachers} == {"hf"}
    assert (p.distill.loss.kind, p.distill.loss.k, p.distill.steps) == ("sva", 64, 2)
    assert smoke.eval.judge is not None and smoke.eval.judge.model == SERVED
    assert smoke.eval.summariser is not None and smoke.eval.summariser.model == SERVED
    assert (smoke.eval.seeds, smoke.eval.limit) == (1, 2)
    assert smoke.eval.extra_benches == full.eval.extra_benches
    assert needs_server(smoke)


def test_a_llama_student_keeps_its_vllm_rollouts(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(
        {
            "name": "served",
            "out": str(tmp_path / "r"),
            "student": {"model": "smollm2-135m"},
            "synth": {"domains": {"instruction": 40}},
            "distill": {"rollout": {"backend": "vllm"}},
        }
    )
    smoke = smoke_recipe(recipe)
    assert smoke.out == tmp_path / "r-smoke"
    assert smoke.student.tiny is not None and smoke.student.tiny.architecture == "llama"
    assert smoke.distill["rollout"]["backend"] == "vllm"
    assert smoke.launch.nproc_per_node == 1  # the recipe trains in one process: so does this
    assert not needs_server(smoke)


def test_a_student_of_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="no tiny model of 'mistralai/Mistral-7B'"):
        tiny_family(StudentSpec(model="mistralai/Mistral-7B"))


def test_several_processes_need_every_trainer_parallel(tmp_path: Path) -> None:
    fields = {
        "name": "x",
        "out": str(tmp_path),
        "student": {"model": "smollm2-135m"},
        "synth": {"domains": {"instruction": 4}},
        "launch": {"nproc_per_node": 2},
        "sft": {"parallel": "ddp"},
        "distill": {"parallel": "ddp"},
    }
    with pytest.raises(ValueError, match=r"nproc_per_node = 2 .* teachers.parallel is none"):
        Recipe.model_validate(fields)
    ok = Recipe.model_validate({**fields, "teachers": {"parallel": "fsdp2"}})
    assert ok.launch.nproc_per_node == 2


def test_the_smoke_dry_run_prints_the_scaled_plan(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["run", "agents-a1", "--smoke", "--dry-run", "--out", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "plan: agents-a1-smoke" in result.output
    assert "tiny-qwen3_5_moe-h128-l2-i256-s0" in result.output
    assert "under torchrun, 2 processes" in result.output
    assert "budget:" not in result.output  # cut on purpose in a smoke run: no warnings
    assert "recipe valid" in result.output
