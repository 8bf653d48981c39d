"""Model backends (hf, openai), chat rendering and tool-call parsing behind one async interface.

Only the light interface types are re-exported here; backends pull in torch or aiohttp, so
callers import them from their own modules (`longhorizon.models.hf`, ...).
"""

from longhorizon.models.types import (
    Backend,
    BackendError,
    ChatResult,
    Completion,
    SequenceScores,
    ToolCallError,
    UnsupportedError,
)

__all__ = [
    "Backend",
    "BackendError",
    "ChatResult",
    "Completion",
    "SequenceScores",
    "ToolCallError",
    "UnsupportedError",
]
