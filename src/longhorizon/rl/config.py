"""The typed Stage-2 RL configuration (GRPO), frozen once resolved and saved with the run.

Field names follow `SFTConfig` and `DistillConfig` where the meaning is the same (`model`,
`output_dir`, `lr`, `micro_batch_size`, `max_grad_norm`, `save_every`, `seed`, ...). Defaults
are the spec's search-teacher values: lr 1e-6 constant, 32 prompts x 8 rollouts, clip
[0.2, 0.28], KL 0.001 to the reference (k3), entropy bonus 1e-4, temperature 1.0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from longhorizon.distill.config import (
    ENGINE_PLACE,
    PARALLEL_FIELDS,
    PRECISION_FIELDS,
    EngineRollout,
)
from longhorizon.rl.shaping import Shaping
from longhorizon.training.config import (
    Parallel,
    Precision,
    config_fingerprint,
    omit_at_default,
)

__all__ = ["GRPOObjective", "RLConfig", "RLRolloutConfig"]

Aggregation = Literal["token", "sequence"]
Overlong = Literal["mask", "penalise", "keep"]
Reward = Literal["all", "fraction"]
Advantage = Literal["grpo", "papo"]


class GRPOObjective(BaseModel):
    """The per-token loss and its aggregation (see `rl/objective.py` for the formulas).

    aggregation (over the WHOLE step batch, every micro-batch):
        token     mean over all trained tokens of the batch (long answers weigh more).
        sequence  mean over sequences of each sequence's mean over its trained tokens.
    overlong (a rollout that hit a budget, status TRUNCATED):
        mask      its tokens carry no loss and it leaves its group's statistics (default).
        penalise  its reward is `overlong_penalty` (instead of the verifier's).
        keep      scored by the verifier like any other rollout.
    Truncated rollouts are counted in the step's metrics whatever the choice.
    reward (from the domain's one verifier; rubric checks never count here):
        all       1 when every verdict passed, else 0 (default).
        fraction  the share of the verifier's constraint verdicts that passed (a domain's
                  summary verdicts, e.g. instruction's "ifeval_all", left out).
    advantage:
        grpo      group-normalised reward (default).
        papo      A_out + process_weight * 1[failed] * A_proc (`objective.papo_advantages`), the
                  process reward being the share of the domain's rubric checks that passed;
                  refused for a domain without rubric checks, and needs `reward: all`.
    shaping (None: off): the report's search shaping added to the reward of the domains it
        names: a format reward, a linear penalty beyond K tool rounds and a capped repetition
        penalty (`rl/shaping.py`; constants ours). Not with PAPO (its outcome is 0/1).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    clip_low: float = Field(default=0.2, ge=0, lt=1)
    clip_high: float = Field(default=0.28, ge=0)
    kl_coef: float = Field(default=0.001, ge=0, description="k3 KL to the frozen reference")
    entropy_coef: float = Field(default=1e-4, ge=0)
    aggregation: Aggregation = "token"
    advantage_eps: float = Field(default=1e-6, gt=0, description="added to the group std")
    scale_by_std: bool = True  # GRPO; False gives Dr. GRPO's mean-centred advantages
    tis_cap: float | None = Field(
        default=None,
        gt=0,
        description="truncated importance sampling: ratios against the trainer's logprobs, "
        "loss weighted by min(pi_trainer / pi_engine, cap); None: ratios against the engine's",
    )
    overlong: Overlong = "mask"
    overlong_penalty: float = 0.0
    reward: Reward = "all"
    advantage: Advantage = "grpo"
    process_weight: float = Field(default=0.5, ge=0, description="PAPO's weight of A_proc")
    shaping: Shaping | None = None

    @model_validator(mode="after")
    def _papo_on_outcomes(self) -> GRPOObjective:
        if self.advantage == "papo" and self.reward != "all":
            raise ValueError(
                "objective.advantage = papo normalises a 0/1 outcome: it needs "
                f"objective.reward = all, not {self.reward!r}"
            )
        if self.advantage == "papo" and self.shaping is not None:
            raise ValueError(
                "objective.shaping makes the outcome non-binary; objective.advantage = papo "
                "needs a 0/1 outcome: use one or the other"
            )
        return self


class RLRolloutConfig(EngineRollout):
    """GRPO's rollouts; with `backend: vllm` the engine is synced after every update and
    `objective.tis_cap` is required."""

    prompts_per_step: int = Field(default=32, ge=1, description="groups kept per step")
    group_size: int = Field(default=8, ge=2, description="rollouts per prompt (G)")
    temperature: float = Field(default=1.0, gt=0.0)
    dynamic_sampling: bool = True  # drop groups whose rewards are all equal, then refill
    max_tries: int = Field(default=3, ge=1, description="rollout rounds per step (refills + 1)")
    prefilter_attempts: int = Field(
        default=0,
        ge=0,
        description="before training, attempt every prompt this many times with the starting "
        "policy and keep those with mixed outcomes (0: off; the report uses 5 for search)",
    )

    @model_validator(mode="after")
    def _check(self) -> RLRolloutConfig:
        if self.prefilter_attempts == 1:
            raise ValueError("rollout.prefilter_attempts must be 0 (off) or >= 2")
        if self.temperature != 1.0:
            # The sampler's logprobs (pi_old) are of the untempered policy: they would not be
            # the distribution the tokens were drawn from.
            raise ValueError("rollout.temperature must be 1.0: pi_old is the untempered policy")
        return self


class RLConfig(BaseModel):
    """Everything one GRPO run needs; saved as `config.yaml` in `output_dir`.

    A step rolls out `prompts_per_step x group_size` episodes and makes `minibatches x epochs`
    optimizer updates (one by default).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- model and data ------------------------------------------------------------------------
    model: str = Field(description="the policy: short name, checkpoint dir or hub id")
    dtype: Precision = Field(
        default="auto",
        description="the policy's (and its reference's) precision, as SFT's: auto is bfloat16 "
        "autocast over float32 weights on a GPU that supports it, else float32",
    )
    tasks: tuple[Path, ...] = Field(description="task stores (directories) the prompts come from")
    corpus: dict[str, tuple[Path, ...]] = Field(default_factory=dict, description="domain -> files")
    rollout: RLRolloutConfig = RLRolloutConfig()
    objective: GRPOObjective = GRPOObjective()
    # ---- optimisation ---------------------------------------------------------------------------
    steps: int = Field(default=100, ge=1)
    minibatches: int = Field(
        default=1, ge=1, description="optimizer updates per rollout batch (shuffled, even split)"
    )
    epochs: int = Field(default=1, ge=1, description="passes over each rollout batch")
    lr: float = Field(default=1e-6, gt=0)
    schedule: Literal["cosine", "constant"] = "constant"
    warmup_ratio: float = Field(default=0.0, ge=0, le=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    micro_batch_size: int = Field(default=4, ge=1, description="sequences per forward pass")
    max_grad_norm: float | None = 1.0
    seed: int = Field(default=0, ge=0)  # numpy's seeds are unsigned
    # ---- run ------------------------------------------------------------------------------------
    output_dir: Path = Path("runs/rl")
    final_dir: Path | None = None  # default: output_dir / "final"
    save_every: int = Field(default=10, ge=1, description="steps between checkpoints")
    keep_checkpoints: int = Field(default=2, ge=1)
    log_every: int = Field(default=1, ge=1)
    resume: bool = True  # continue from the latest checkpoint in output_dir
    tensorboard: bool = True
    num_threads: int | None = Field(default=None, ge=1)  # CPU threads of this process
    parallel: Parallel = Field(
        default="none",
        description="none, or ddp / fsdp2 under torchrun: each rank rolls out its share of the "
        "step's prompts; gradients are summed over ranks (fsdp2: the policy sharded, a whole "
        "replica per rank for rollouts)",
    )

    @model_validator(mode="after")
    def _engine_correction(self) -> RLConfig:
        if self.rollout.backend != "hf" and self.objective.tis_cap is None:
            raise ValueError(
                f"rollout.backend = {self.rollout.backend} samples with the server's kernels, "
                "not the trainer's: set objective.tis_cap (e.g. 2.0) so that the ratios are "
                "taken against the trainer's logprobs and the engine mismatch is corrected by "
                "truncated importance sampling"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after GRPO stages were cached: at their defaults they stay out of the keys.
        added = ("minibatches", "epochs")
        return omit_at_default(self, handler(self), (*PARALLEL_FIELDS, *PRECISION_FIELDS, *added))

    @property
    def final_path(self) -> Path:
        return self.final_dir or self.output_dir / "final"

    @property
    def updates_per_step(self) -> int:
        return self.minibatches * self.epochs

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def fingerprint(self) -> str:
        """Hash of the fields that decide the training curve (not logging nor bookkeeping, nor
        the number of ranks: they change it only by float rounding)."""
        return config_fingerprint(self, {*PARALLEL_FIELDS, *ENGINE_PLACE})
