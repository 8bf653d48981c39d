"""How hard the tool-calling domain's tasks are; synthesis and the held-out split share it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ToolLevel(BaseModel):
    """The world mix, how often the user holds an id (rather than the agent finding it with a
    list call), and how often the scripted expert errs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    world_weights: tuple[float, float] = Field(
        default=(0.5, 0.5), description="relative share of retail and travel tasks"
    )
    p_user_id: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="chance that the user holds an order or booking id (else a list call finds it)",
    )
    expert_error_rate: float = Field(
        default=0.15,
        ge=0,
        le=1,
        description="the scripted expert errs: a mistyped id it then corrects (recovered), or a "
        "destructive call without asking for confirmation (a policy failure the rubric catches)",
    )

    @model_validator(mode="after")
    def _weights(self) -> ToolLevel:
        if min(self.world_weights) < 0 or sum(self.world_weights) <= 0:
            raise ValueError(f"world_weights {self.world_weights}: need >= 0, not all 0")
        return self

    def tool_steps(self) -> int:
        """The most tool steps the expert takes: four calls, three questions to the user, one
        confirmation and one retry after a mistyped id."""
        return 4 + 3 + 1 + 1
