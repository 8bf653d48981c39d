"""Task domains, one folder each: `domains/<name>/` exports one `DomainSpec` (its level,
protocol, verifier, world: proposer, expert, guesser, held-out split, resources).

Importing this package registers the built-in domains (search, instruction, molecules,
science, tool, mle) in `registry`; the first lookup loads the plug-in domains: the modules named in
`LONGHORIZON_DOMAINS` (comma-separated, `module` or `module:ATTR`) and the entry points of
`longhorizon.domains`.
`verify(task, trajectory)` is the one verifier every stage calls: it routes by `task.domain`.
"""

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.domains import registry
from longhorizon.domains.instruction.spec import SPEC as INSTRUCTION
from longhorizon.domains.mle.spec import SPEC as MLE
from longhorizon.domains.molecules.spec import SPEC as MOLECULES
from longhorizon.domains.science.spec import SPEC as SCIENCE
from longhorizon.domains.search.spec import SPEC as SEARCH
from longhorizon.domains.spec import (
    HELDOUT_SEED,
    DomainSpec,
    LevelError,
    UnknownVerifierError,
    World,
)
from longhorizon.domains.synth import synthesize
from longhorizon.domains.tool.spec import SPEC as TOOL

__all__ = [
    "HELDOUT_SEED",
    "INSTRUCTION",
    "MLE",
    "MOLECULES",
    "SCIENCE",
    "SEARCH",
    "TOOL",
    "DomainSpec",
    "LevelError",
    "UnknownVerifierError",
    "World",
    "registry",
    "synthesize",
    "verify",
]

registry.register(SEARCH)
registry.register(INSTRUCTION)
registry.register(MOLECULES)
registry.register(SCIENCE)
registry.register(TOOL)
registry.register(MLE)


def verify(task: Task, trajectory: Trajectory) -> list[Verdict]:
    """The verdicts of `task` by its domain's verifier (synthesis, rewards, OPD, evaluation)."""
    return registry.get(task.domain).verify(task, trajectory)
