"""How hard the MLE domain's competitions are; synthesis and the held-out split share it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MLELevel(BaseModel):
    """The competition mix (difficulty knobs drawn per competition), the time limit of one
    run, the verifier's margins, and how often the scripted expert slips."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_share: float = Field(
        default=0.5, ge=0, le=1, description="share of generated tasks (else scikit-learn's)"
    )
    leak_share: float = Field(default=0.2, ge=0, le=1, description="share with a leakage trap")
    noise: float = Field(default=0.1, ge=0, le=0.45, description="largest label/target noise")
    missing_share: float = Field(default=0.3, ge=0, le=1, description="share with blanks")
    missing: float = Field(default=0.1, ge=0, le=0.5, description="blank cells when blanked")
    imbalance_share: float = Field(
        default=0.3, ge=0, le=1, description="generated binary tasks with a rare positive class"
    )
    interactions_share: float = Field(
        default=0.5, ge=0, le=1, description="generated tasks whose target has interactions"
    )
    n_train: int = Field(default=240, ge=40, le=2000)
    n_test: int = Field(default=100, ge=20, le=500)
    time_limit_s: float = Field(default=60.0, gt=0, description="wall clock of one execute_code")
    margin: float = Field(
        default=0.5,
        ge=0,
        description="least gain over the baseline to pass, as a share of the reference's gain",
    )
    max_gap: float = Field(
        default=0.6,
        ge=0,
        description="largest optimism (validation gain minus test gain) the reliability check "
        "allows; beyond it the validation score is taken for leakage or overfitting",
    )
    expert_error_rate: float = Field(
        default=0.2, ge=0, le=1, description="the expert writes a patch that crashes, then fixes it"
    )

    def tool_steps(self) -> int:
        """The most tool steps the expert takes: three roots and their runs, the leak fix, the
        overfit and leak invalidations, a note, a crashing patch and its fix, the commit."""
        return 3 * 2 + 2 + 2 + 1 + 2 * 2 + 1 + 1
