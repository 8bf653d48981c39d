"""What a tool is, what it returns, and the per-episode context it may use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from longhorizon.core.task import Task


@dataclass
class ToolContext:
    """Per-episode state shared by the episode's tool calls.

    `resources` holds what tools need from outside the episode (a corpus index, a summariser
    backend); `state` holds what a tool keeps between calls of one episode (the python
    sandbox process, notes). `close()` releases it when the episode ends. `workdir` is the
    episode's own directory; it is not created up front (most episodes never touch disk), so a
    tool that writes there creates it. `task` is the episode's task (a stateful world's tools
    build their state from it; most tools ignore it).
    """

    episode_id: str
    workdir: Path
    resources: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    task: Task | None = None

    async def aclose(self) -> None:
        for value in self.state.values():
            closer = getattr(value, "aclose", None)
            if closer is not None:
                await closer()


@dataclass
class ToolResult:
    """An observation: `content` is what the model sees; `error` is set when the call failed.

    `refs` are ids of evidence the call consulted (pages read, search hits shown): they become
    the step's state references and feed the evidence-coverage acceptance rule.
    """

    content: str
    error: str | None = None
    truncated: bool = False
    duration_s: float = 0.0
    refs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None
