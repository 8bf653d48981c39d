"""OpenAI chat-format messages and tool calls: the conversation view of a trajectory."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class FunctionCall(BaseModel):
    """A function name and its arguments as a JSON string, exactly as OpenAI sends them."""

    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError with the offending text when they are not."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"tool arguments are not valid JSON: {self.arguments!r}") from exc
        if not isinstance(value, dict):
            raise ValueError(f"tool arguments must be a JSON object, got: {self.arguments!r}")
        return value


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    """One chat message. Assistant messages keep the raw generated text in `content`."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The dict an OpenAI-compatible API or a chat template expects (None fields dropped)."""
        return self.model_dump(exclude_none=True)


def last_observations(messages: list[Message]) -> str:
    """The tool observations after the last assistant message, joined by blank lines (what a
    scripted expert reads before its next move)."""
    trailing: list[str] = []
    for message in reversed(messages):
        if message.role != "tool":
            break
        trailing.append(message.content or "")
    return "\n\n".join(trailing[::-1])


class ToolSpec(BaseModel):
    """An OpenAI function-tool schema: {"type": "function", "function": {...}}."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }
