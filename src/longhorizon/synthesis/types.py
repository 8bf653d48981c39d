"""The roles of self-play synthesis: proposer, solver, verifier, and a domain that ties them."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from longhorizon.core.task import Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.harness.agent import Agent
from longhorizon.tools.base import ToolSet


class Proposer(Protocol):
    """Samples a region of the domain's graph and proposes a task x = (q, d, y*, E_q, V_q)."""

    def propose(self, rng: random.Random) -> Task | None: ...

    def feedback(self, task: Task, reasons: list[str]) -> None:
        """Learns of a rejection (reasons) or an acceptance (no reasons)."""
        ...


@dataclass
class Domain:
    """Everything self-play needs for one domain.

    `solver(task)` is the agent that solves (a model, the same for every task, or a scripted
    expert made for the task); `guesser(task)` is the no-tool attempt whose success flags a
    shortcut (None: the domain has no tools, so there is nothing to shortcut). `verifiers` are
    the verifier names `verify` understands (a task naming another is unverifiable);
    `process_verifiers` judge the path, not the answer, so a no-tool guess is not asked to pass.
    `screen(task)` is the domain's check before solving: a rejection reason ("rule: detail",
    counted by rule like the acceptance rules) or None when the task may be attempted.
    """

    name: str
    proposer: Proposer
    solver: Callable[[Task], Agent]
    toolset: Callable[[Task], ToolSet]
    verify: Callable[[Task, Trajectory], list[Verdict]]
    guesser: Callable[[Task], Agent] | None = None
    min_tool_steps: int = 0
    resources: dict[str, Any] = field(default_factory=dict)
    verifiers: frozenset[str] = frozenset()
    process_verifiers: frozenset[str] = frozenset()
    screen: Callable[[Task], str | None] | None = None
