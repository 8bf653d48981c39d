"""How hard the instruction domain's tasks are; synthesis and the held-out split share it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MAX_RESPONSE_CHARS = 6000  # ~2k tokens: the default fits INSTRUCTION_BUDGETS
LONG_CONTEXT_SHARE = 0.2  # a fifth of the tasks are long-document multiple choice


class InstructionLevel(BaseModel):
    """The defaults are the full domain; a recipe for tiny models asks for easier draws.

    A draw is kept only when the scripted expert's response fits `max_response_chars`, so a
    small bound also drops the instructions that demand long answers ("at least 300 words").
    With few instructions per prompt many draws are passed by any short text; for a score that
    measures instruction following, `informative_only` keeps only the draws that need it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_instructions: int = Field(default=4, ge=1, le=4, description="instructions per prompt")
    max_response_chars: int = Field(default=MAX_RESPONSE_CHARS, ge=200)
    long_context_share: float = Field(default=LONG_CONTEXT_SHARE, ge=0.0, le=1.0)
    informative_only: bool = Field(
        default=False,
        description="drop draws that the plain answer to the bare request already passes "
        "(e.g. a lone 'no commas'): they test nothing a model learns",
    )
