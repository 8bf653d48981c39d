"""The instruction-following domain wired for self-play (composed constraints, long context)."""

from __future__ import annotations

from longhorizon.core.task import Task
from longhorizon.domains.instruction import InstructionProposer, expert_script, verify_task
from longhorizon.harness.agent import Agent, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.types import Domain
from longhorizon.tools.base import ToolSet

LONG_CONTEXT_SHARE = 0.2  # a fifth of the tasks are long-document multiple choice


def instruction_domain(
    renderer: ChatRenderer,
    *,
    seed: int = 0,
    model: Agent | None = None,
    long_context_share: float = LONG_CONTEXT_SHARE,
) -> Domain:
    """No tools, so no shortcut to check and no minimum of tool steps."""

    def expert(task: Task) -> Agent:
        return ScriptedAgent(renderer, expert_script(task), "instruction-expert")

    return Domain(
        name="instruction",
        proposer=InstructionProposer(long_context_share),
        solver=(lambda t: model) if model else expert,
        toolset=lambda t: ToolSet([]),
        verify=lambda task, traj: verify_task(task, traj),
        guesser=None,
        min_tool_steps=0,
    )
