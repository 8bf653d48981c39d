"""The MLE domain's tool side: competitions (`data`), their local grader (`grade`), the
solution tree (`tree`) and the tools that grow it (`harness`). The domain itself (proposer,
expert, verifier, held-out split) is `longhorizon.domains.mle`."""

from longhorizon.tools.mle.data import SOURCES, Competition, Recipe, build, write_files
from longhorizon.tools.mle.grade import (
    MEDALS,
    SubmissionError,
    baseline_prediction,
    gain,
    medal,
    metric_value,
    parse_submission,
    score,
)
from longhorizon.tools.mle.tree import (
    Call,
    RunRecord,
    SolutionNode,
    SolutionTree,
    TreeError,
    replay,
)

__all__ = [
    "MEDALS",
    "SOURCES",
    "Call",
    "Competition",
    "Recipe",
    "RunRecord",
    "SolutionNode",
    "SolutionTree",
    "SubmissionError",
    "TreeError",
    "baseline_prediction",
    "build",
    "gain",
    "medal",
    "metric_value",
    "parse_submission",
    "replay",
    "score",
    "write_files",
]
