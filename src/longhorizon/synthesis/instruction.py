"""The instruction-following domain wired for self-play (composed constraints, long context)."""

from __future__ import annotations

from longhorizon.core.task import Task
from longhorizon.domains.instruction import (
    InstructionLevel,
    InstructionProposer,
    expert_script,
    verify_task,
)
from longhorizon.harness.agent import Agent, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.types import Domain
from longhorizon.tools.base import ToolSet


def instruction_domain(
    renderer: ChatRenderer,
    *,
    seed: int = 0,
    model: Agent | None = None,
    level: InstructionLevel | None = None,
) -> Domain:
    """No tools, so no shortcut to check and no minimum of tool steps."""

    def expert(task: Task) -> Agent:
        return ScriptedAgent(renderer, expert_script(task), "instruction-expert")

    return Domain(
        name="instruction",
        proposer=InstructionProposer(level),
        solver=(lambda t: model) if model else expert,
        toolset=lambda t: ToolSet([]),
        verify=lambda task, traj: verify_task(task, traj),
        guesser=None,
        min_tool_steps=0,
    )
