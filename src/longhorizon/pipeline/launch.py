"""Training stages of `longhorizon run` on several processes (`launch.nproc_per_node` > 1).

The run stays one command. For SFT, the teachers and OPD it starts

    python -m torch.distributed.run --standalone --nproc_per_node N \\
        -m longhorizon.pipeline.launch RUN/recipe.yaml STAGE

and waits. Every rank loads the run's resolved recipe (written before any stage runs), builds
the same plan and runs the stage's own function, so a stage is the same code with or without
a launcher; rank 0 prints. A failed stage fails the run with its exit code; rerunning `run`
resumes it from its checkpoints, as in one process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch.distributed as dist

from longhorizon.pipeline.stages import Plan

__all__ = ["DISTRIBUTED_STAGES", "RECIPE_FILE", "StageLaunchError", "launch_stage"]

DISTRIBUTED_STAGES = ("sft", "teachers", "distill")
RECIPE_FILE = "recipe.yaml"  # the run's resolved recipe, beside stages.json


class StageLaunchError(RuntimeError):
    """A stage under torchrun exited non-zero (its output, above, says why)."""


def launch_stage(p: Plan, stage: str) -> None:
    """Run `stage` of the plan's run under torchrun with the recipe's process count."""
    n = p.recipe.launch.nproc_per_node
    command = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"),
        *("-m", __name__, str(p.out / RECIPE_FILE), stage),
    ]
    env = dict(os.environ)
    # torchrun warns when it has to pick the thread count; split the cores between the ranks
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // n)))
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0:
        raise StageLaunchError(
            f"stage {stage} on {n} processes (torchrun) exited with code {done.returncode}; "
            "rerun the same command to resume it from its last checkpoint"
        )


def main(argv: list[str]) -> None:
    from longhorizon.core.logs import send_third_party_to
    from longhorizon.pipeline.recipe import load_recipe
    from longhorizon.pipeline.run import STAGE_STEPS, student_checkpoint
    from longhorizon.pipeline.stages import plan
    from longhorizon.training.distributed import keep_process_group

    recipe_file, stage = argv
    if stage not in DISTRIBUTED_STAGES:
        raise SystemExit(f"stage {stage!r} does not run under torchrun: {DISTRIBUTED_STAGES}")
    if int(os.environ.get("RANK", "0")) != 0:  # one voice: rank 0 prints, the others only err
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the process's lifetime)
    keep_process_group()  # one group for the stage's trainers (teachers: several in a row)
    recipe = load_recipe(Path(recipe_file))
    send_third_party_to(recipe.out / "run.log")  # library bars and warnings, as in the parent
    STAGE_STEPS[stage](plan(recipe, student_checkpoint(recipe)))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
