"""The general agentic domain, molecules: multi-step tasks over RDKit tools.

A seeded pool of molecules enumerated from fragments (`pool`), constraints (`constraints`),
filter / rank / pair tasks with plans (`tasks`), a scripted expert that calls the tools one
step a turn (`expert`) and one verifier that recomputes the answer with RDKit (`verify`).
`SPEC` is the domain as the pipeline sees it (`longhorizon.domains.spec.DomainSpec`).
"""

from longhorizon.domains.molecules.constraints import PATTERNS, Constraint
from longhorizon.domains.molecules.expert import MoleculesExpert, expert_script
from longhorizon.domains.molecules.level import MoleculesLevel
from longhorizon.domains.molecules.pool import Pool, build_pool, is_heldout
from longhorizon.domains.molecules.spec import (
    SPEC,
    MoleculesProposer,
    guess_without_tools,
    heldout_tasks,
    load_into_kag,
)
from longhorizon.domains.molecules.tasks import DOMAIN, TOOLS, propose_task
from longhorizon.domains.molecules.verify import check_answer, expected, verify

__all__ = [
    "DOMAIN",
    "PATTERNS",
    "SPEC",
    "TOOLS",
    "Constraint",
    "MoleculesExpert",
    "MoleculesLevel",
    "MoleculesProposer",
    "Pool",
    "build_pool",
    "check_answer",
    "expected",
    "expert_script",
    "guess_without_tools",
    "heldout_tasks",
    "is_heldout",
    "load_into_kag",
    "propose_task",
    "verify",
]
