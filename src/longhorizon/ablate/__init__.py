"""Studies: ablations, sweeps and seeds as one command (`longhorizon ablate STUDY.yaml`).

A study is a base recipe, variants (`--set`-style overrides) and seeds (`study`); each
stage's output is keyed by a hash of its resolved config, so cells share what they do not
change (`keys`), and a finished `longhorizon run` can fill the cache (`reuse`); `runner`
runs the grid resumably; `analysis` and `stats` turn the per-item
files into paired two-level bootstrap differences with Holm and MDE notes; `results` writes
the table, the plot and the JSON.
"""

from longhorizon.ablate.runner import plan_study, print_grid, reuse_matches, run_study
from longhorizon.ablate.study import (
    Study,
    StudyError,
    Variant,
    load_study,
    with_seeds,
    with_variants,
)

__all__ = [
    "Study",
    "StudyError",
    "Variant",
    "load_study",
    "plan_study",
    "print_grid",
    "reuse_matches",
    "run_study",
    "with_seeds",
    "with_variants",
]
