"""The science domain: parametrised physics and chemistry problems with exact answers in
units (pint), self-play rewrites (harder: composed steps and symbolic answers;
interaction-enriched: python sweeps and handbook lookups), a scripted expert through the
harness, and one verifier (numeric with units and a relative tolerance, or sympy equivalence).

`SPEC` is the domain as the pipeline sees it (`longhorizon.domains.spec.DomainSpec`).
"""

from longhorizon.domains.science.answers import parse_formula, parse_quantity, strip_boxed
from longhorizon.domains.science.expert import ScienceExpert, expert_script, python_code
from longhorizon.domains.science.families import FAMILIES, Family, Feeder, Var
from longhorizon.domains.science.handbook import CONSTANTS, PROPERTIES, Handbook, Material
from longhorizon.domains.science.problems import (
    Problem,
    answer,
    draw_seed,
    evaluate,
    harder,
    with_lookup,
    with_python,
)
from longhorizon.domains.science.spec import (
    SPEC,
    ScienceLevel,
    ScienceProposer,
    guess_without_tools,
    propose_tasks,
)
from longhorizon.domains.science.tasks import (
    DOMAIN,
    REL_TOL,
    SYSTEM_PROMPT,
    statement,
    task_from_problem,
)
from longhorizon.domains.science.verify import (
    VERIFIERS,
    check_numeric,
    check_symbolic,
    final_answer,
    verify,
    verify_science,
)

__all__ = [
    "CONSTANTS",
    "DOMAIN",
    "FAMILIES",
    "PROPERTIES",
    "REL_TOL",
    "SPEC",
    "SYSTEM_PROMPT",
    "VERIFIERS",
    "Family",
    "Feeder",
    "Handbook",
    "Material",
    "Problem",
    "ScienceExpert",
    "ScienceLevel",
    "ScienceProposer",
    "Var",
    "answer",
    "check_numeric",
    "check_symbolic",
    "draw_seed",
    "evaluate",
    "expert_script",
    "final_answer",
    "guess_without_tools",
    "harder",
    "parse_formula",
    "parse_quantity",
    "propose_tasks",
    "python_code",
    "statement",
    "strip_boxed",
    "task_from_problem",
    "verify",
    "verify_science",
    "with_lookup",
    "with_python",
]
