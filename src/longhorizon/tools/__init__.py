"""Tools the agent calls: typed functions with schemas, executed safely per episode."""

from longhorizon.tools.base import Tool, ToolSet, tokenizer_truncator, tool, truncate_chars
from longhorizon.tools.types import ToolContext, ToolResult

__all__ = [
    "Tool",
    "ToolContext",
    "ToolResult",
    "ToolSet",
    "tokenizer_truncator",
    "tool",
    "truncate_chars",
]
