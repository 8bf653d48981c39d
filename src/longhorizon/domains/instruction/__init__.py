"""The instruction-following and long-context domain.

Instruction tasks: a seeded request plus 1-4 compatible IFEval instructions (a conflict
table rejects incompatible draws), verified by the IFEval checkers, and kept only when a
scripted expert's constructive response passes every strict check. Long-context tasks: a
seeded report of several thousand words with an injected local rule and distractors,
asked as multiple choice, kept only when the answer depends on both evidence and rule.
`SPEC` is the domain as the pipeline sees it (`longhorizon.domains.spec.DomainSpec`).
"""

from longhorizon.domains.instruction.constraints import (
    ALWAYS_CONFLICTS,
    CONDITIONAL_CONFLICTS,
    ComposedPrompt,
    Constraint,
    compose,
    conflict,
    find_conflict,
)
from longhorizon.domains.instruction.expert import expert_response, expert_script, write_response
from longhorizon.domains.instruction.level import InstructionLevel
from longhorizon.domains.instruction.longcontext import (
    propose_longcontext_task,
    propose_longcontext_tasks,
)
from longhorizon.domains.instruction.propose import (
    InstructionProposer,
    propose_task,
    propose_tasks,
)
from longhorizon.domains.instruction.reader import answer_message, solve
from longhorizon.domains.instruction.spec import SPEC
from longhorizon.domains.instruction.tasks import (
    DOMAIN,
    build_task,
    instruction_protocol,
    propose_instruction_task,
    propose_instruction_tasks,
)
from longhorizon.domains.instruction.text import Infeasible
from longhorizon.domains.instruction.verify import (
    choice_letter,
    final_answer,
    strict_passes,
    verify,
    verify_choice,
    verify_instruction,
    verify_task,
)

__all__ = [
    "ALWAYS_CONFLICTS",
    "CONDITIONAL_CONFLICTS",
    "DOMAIN",
    "SPEC",
    "ComposedPrompt",
    "Constraint",
    "Infeasible",
    "InstructionLevel",
    "InstructionProposer",
    "answer_message",
    "build_task",
    "choice_letter",
    "compose",
    "conflict",
    "expert_response",
    "expert_script",
    "final_answer",
    "find_conflict",
    "instruction_protocol",
    "propose_instruction_task",
    "propose_instruction_tasks",
    "propose_longcontext_task",
    "propose_longcontext_tasks",
    "propose_task",
    "propose_tasks",
    "solve",
    "strict_passes",
    "verify",
    "verify_choice",
    "verify_instruction",
    "verify_task",
    "write_response",
]
