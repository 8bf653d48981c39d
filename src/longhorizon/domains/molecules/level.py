"""How hard the molecules domain's tasks are; synthesis and the held-out split share it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

KINDS = ("filter", "rank", "pair")
RANK_TOP = 3  # rank tasks ask for the top 3, in order


SMILES_TOKENS = 25  # a pool SMILES plus its newline, rounded up from the longest measured


class MoleculesLevel(BaseModel):
    """The pool, the task mix and the three dials of difficulty.

    `constraints: [lo, hi]` is how many constraints a filter task combines; `set_size: [lo,
    hi]` how many molecules a filter or rank task shows; plan length follows from both (a
    descriptors call per molecule, plus a rule_filter and a substructure call for each
    molecule still in the running when the task has such constraints).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    pool_size: int = Field(default=3000, ge=200, description="molecules enumerated")
    constraints: tuple[int, int] = Field(default=(2, 4), description="per filter task")
    set_size: tuple[int, int] = Field(default=(4, 8), description="molecules per task")
    kind_weights: tuple[float, float, float] = Field(
        default=(0.5, 0.3, 0.2), description="relative share of filter, rank and pair tasks"
    )
    expert_error_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="the scripted expert errs: a mistyped SMILES it then corrects (recovered), "
        "or an answer before checking the last molecule (a guess the verifier may reject)",
    )

    @model_validator(mode="after")
    def _ranges(self) -> MoleculesLevel:
        if not 1 <= self.constraints[0] <= self.constraints[1] <= 5:
            raise ValueError(f"constraints {self.constraints}: need 1 <= min <= max <= 5")
        if not RANK_TOP + 1 <= self.set_size[0] <= self.set_size[1] <= 12:
            raise ValueError(f"set_size {self.set_size}: need {RANK_TOP + 1} <= min <= max <= 12")
        if min(self.kind_weights) < 0 or sum(self.kind_weights) <= 0:
            raise ValueError(f"kind_weights {self.kind_weights}: need >= 0, not all 0")
        return self

    def tool_steps(self) -> int:
        """The most tool steps the expert's path takes: three calls for each molecule of the
        largest filter task, plus one retry after a mistyped SMILES."""
        return 3 * self.set_size[1] + 1

    def turn_tokens(self) -> int:
        """The expert's longest turn: a filter answer listing every molecule of the largest
        set, about 24 SmolLM2 tokens a SMILES (121 measured at sets of 5, 197 at 8)."""
        return SMILES_TOKENS * self.set_size[1]
