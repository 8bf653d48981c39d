"""The ML-engineering domain: local competitions (scikit-learn's bundled datasets and
generated tabular and time-series tasks with controlled difficulty), solved by growing a
solution tree of executable code (`tools.mle`: write_full_code, patch_code, execute_code in
the python sandbox, list/select/invalidate nodes, update/get the answer, notes).

`tasks` draws competitions and declares their baseline and reference scores, `expert` is the
scripted sklearn expert, `verify` the one verifier (committed submission beats the baseline
by a margin; validation score reliable), `kag` writes each episode's tree into the KAG, and
`SPEC` is the domain as the pipeline sees it.
"""

from longhorizon.domains.mle.expert import MLEExpert, expert_script, solution_code
from longhorizon.domains.mle.kag import load_tree, record_competition, record_tree
from longhorizon.domains.mle.level import MLELevel
from longhorizon.domains.mle.spec import SPEC, MLEProposer, guess_without_tools, heldout_tasks
from longhorizon.domains.mle.tasks import (
    DOMAIN,
    RELIABLE,
    SUBMISSION,
    VERIFIERS,
    describe,
    draw_recipe,
    heldout_region,
    reference_score,
    screen,
    task_from_recipe,
)
from longhorizon.domains.mle.verify import grade_answer, tree_of, verify

__all__ = [
    "DOMAIN",
    "RELIABLE",
    "SPEC",
    "SUBMISSION",
    "VERIFIERS",
    "MLEExpert",
    "MLELevel",
    "MLEProposer",
    "describe",
    "draw_recipe",
    "expert_script",
    "grade_answer",
    "guess_without_tools",
    "heldout_region",
    "heldout_tasks",
    "load_tree",
    "record_competition",
    "record_tree",
    "reference_score",
    "screen",
    "solution_code",
    "task_from_recipe",
    "tree_of",
    "verify",
]
