"""The typed Stage-3 configuration: the loss, the rollouts and the run (frozen once resolved).

Field names follow `SFTConfig` where the meaning is the same (`model`, `output_dir`, `lr`,
`micro_batch_size`, `max_grad_norm`, `save_every`, `seed`, ...). Optimizer defaults are OPD's
own: AdamW (0.9, 0.999), no weight decay, constant lr (on-policy targets move; no decay wanted).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from longhorizon.core import Task
from longhorizon.serving.options import BOOKKEEPING_FIELDS, EngineKind, VLLMEngineConfig
from longhorizon.serving.summariser import SummariserConfig
from longhorizon.training.config import (
    Parallel,
    Precision,
    config_fingerprint,
    omit_at_default,
)

LossKind = Literal["sva", "full_rkl", "sampled_token", "student_topk", "union", "sva_tail"]
Aggregation = Literal["token", "sample", "domain"]
# Kinds that need the teacher's logprobs at ids it did not pick itself (an in-process teacher).
ARBITRARY_ID_KINDS: dict[str, str] = {
    "full_rkl": "the teacher's logprobs over the whole vocabulary at every trained position",
    "student_topk": "the teacher's logprobs at the student's top-k ids",
    "union": "the teacher's logprobs at the student's top-k ids",
}
STUDENT_TOPK_KINDS = ("student_topk", "union")
Routing = Literal["hard", "soft"]
# Fields added after stage keys were cached: left at their default they stay out of the dump
# (and so out of every content key and checkpoint fingerprint).
ROUTING_FIELDS = ("routing", "routing_weights")
# the rollout engine's and the per-domain budgets, added later likewise
ENGINE_FIELDS = ("backend", "vllm", "domain_max_turns", "domain_max_tokens", "summariser")
ENGINE_PLACE = tuple(f"rollout.vllm.{name}" for name in BOOKKEEPING_FIELDS)
STREAMING_FIELDS = ("max_staleness",)  # added later likewise (issue 17)
# Added after OPD and GRPO runs were cached (issues 13, 17): at "none" it stays out of the dump.
PARALLEL_FIELDS = ("parallel",)
# Added likewise (issue 17): at "auto" (float32 on CPU, as before) it stays out of the dump.
PRECISION_FIELDS = ("dtype",)
# Default soft mixture: the sample's own domain's teacher gets this weight, the other teachers
# share the rest equally (a single teacher gets 1).
OWN_TEACHER_WEIGHT = 0.5
WEIGHT_SUM_TOLERANCE = 1e-6


class TeacherSpec(BaseModel):
    """A domain's teacher: an in-process checkpoint (`hf`) or a server with prompt scoring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str
    model: str
    backend: Literal["hf", "openai"] = "hf"
    base_url: str | None = None
    tokenizer: str | None = None  # for `openai`: a local tokenizer dir (defaults to `model`)
    # `hf` only. The frozen teacher's weights load straight into `dtype` (no float32 copy is
    # ever held) on `device`. auto: the GPU when there is one, in bfloat16 (half the memory of
    # float32, the tensor cores); on CPU float32, as before. `dtype: bfloat16` on a CPU with
    # AVX512-BF16/AMX halves the memory too and ran this machine's matmuls 3.5x faster; its
    # top-k ids match float32's (tests/test_teacher_dtype.py). Logprobs are taken in float32.
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after OPD runs were cached; at "auto" a CPU teacher loads as it always did.
        return omit_at_default(self, handler(self), ("dtype", "device"))


class DistillLossConfig(BaseModel):
    """Selects the distillation objective; every kind shares the same aggregation code path.

    kind:
        sva            reverse KL on the teacher's top-k, both models renormalised on it (spec SVA).
        full_rkl       full-vocabulary reverse KL KL(p_s || p_t); needs the teacher's full logprobs.
        sampled_token  single-sample reverse KL on the student's own token, policy-gradient form.
        student_topk   renormalised reverse KL on the student's top-k (teacher scores those ids).
        union          renormalised reverse KL on teacher top-k ∪ student top-k.
        sva_tail       teacher top-k plus one "tail" bucket with the remaining mass (k + 1 outcomes,
                       no renormalisation; needs the student's full normaliser).
    aggregation (over the WHOLE optimizer batch: all micro-batches and ranks):
        token   mean over all trainable tokens of the batch.
        sample  mean over samples of each sample's mean over its trainable tokens.
        domain  mean over the domains present of the mean over their samples of the per-sample mean
                (the spec's domain-normalised objective).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: LossKind = "sva"
    # Size of the salient set. The teacher may ship K >= k candidates per position: the k with the
    # highest teacher logprob (valid ids only) are used, so one teacher pass serves several k.
    # Student top-k ids (student_topk / union) must be computed with exactly this k.
    k: int = Field(default=64, ge=1)
    aggregation: Aggregation = "domain"
    # Ids never used as salient outcomes. Ids < 0 (padding) and ids >= V (outside the student's
    # output layer) are always excluded.
    excluded_ids: tuple[int, ...] = ()
    # The OPD trainer adds the tokenizer's special ids (chat-template markers) to `excluded_ids`.
    exclude_special: bool = True
    # Positions per chunk for the k-row gather (memory ~ position_chunk * k * H) and for the
    # streaming vocabulary passes (memory ~ position_chunk * vocab_chunk).
    position_chunk: int = Field(default=128, ge=1)
    vocab_chunk: int = Field(default=16384, ge=1)
    # Positions per chunk for the full-vocabulary reverse KL (memory ~ a few * chunk * V).
    full_position_chunk: int = Field(default=128, ge=1)
    # Student coverage of the teacher's top-k under the full softmax (no gradient). It costs one
    # full-vocabulary forward pass (streamed), so a trainer may compute it only every few steps.
    monitor_coverage: bool = True


class EngineRollout(BaseModel):
    """The rollout engine's part of a rollout config, shared by OPD's and GRPO's
    (`serving/engine.py`); `distill/rollouts.open_rollout_engine` opens it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    concurrency: int = Field(default=8, ge=1)
    backend: EngineKind = Field(
        default="hf",
        description="the rollout engine: hf (an in-process snapshot of the policy) or vllm (a "
        "server whose weights are synced in place whenever the policy changed)",
    )
    vllm: VLLMEngineConfig = VLLMEngineConfig()
    max_turns: int | None = Field(default=None, ge=1, description="overrides each task's T_max")
    max_tokens: int | None = Field(default=None, ge=1, description="overrides each task's L_resp")
    domain_max_turns: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="domain -> its own T_max, over max_turns (a one-step science task need not "
        "be given MLE's 18 turns)",
    )
    domain_max_tokens: dict[str, PositiveInt] = Field(
        default_factory=dict,
        description="domain -> its own L_resp, over max_tokens (a science or MLE turn with a "
        "whole derivation or script needs more than a search call)",
    )
    summariser: SummariserConfig | None = Field(
        default=None, description="the model visit asks to answer its goal (None: the page)"
    )
    max_staleness: int = Field(
        default=0,
        ge=0,
        description="0: each step rolls out on the policy it trains (on-policy); 1: the "
        "rollouts of step t+1 run on the policy from before step t's update while that "
        "update runs (OPD: all of them; GRPO: the first round), on any engine and parallelism",
    )

    @model_validator(mode="after")
    def _check_staleness(self) -> EngineRollout:
        if self.max_staleness > 1:
            raise ValueError(
                f"rollout.max_staleness: {self.max_staleness} is not built: 0 (on-policy) or 1 "
                "(the next step's rollouts overlap this step's update, one policy version "
                "behind); deeper pipelines would need several engine snapshots at once"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_at_default(self, handler(self), (*ENGINE_FIELDS, *STREAMING_FIELDS))

    def budgeted(self, task: Task, task_id: str) -> Task:
        """`task` as one rollout episode: its id `task_id`, under its domain's budgets (None:
        the task's own T_max and L_resp)."""
        turns = self.domain_max_turns.get(task.domain, self.max_turns)
        tokens = self.domain_max_tokens.get(task.domain, self.max_tokens)
        return task.with_budgets(turns, tokens).model_copy(update={"id": task_id})


class RolloutConfig(EngineRollout):
    prompts_per_step: int = Field(default=8, ge=1, description="spread over the domains")
    domain_weights: dict[str, float] = Field(
        default_factory=dict,
        description="relative share of each domain's prompts per step (missing: 1); the loss "
        "stays domain-normalised, so a weight buys samples, not influence",
    )
    samples_per_prompt: int = Field(default=1, ge=1)
    temperature: float = Field(default=1.0, ge=0.0)
    refresh_every: int = Field(default=1, ge=1, description="rollout batches per engine sync")

    @model_validator(mode="after")
    def _check_refresh(self) -> RolloutConfig:
        if self.max_staleness and self.refresh_every > 1:
            raise ValueError(
                f"rollout.max_staleness: 1 syncs the engine after every step's scoring; "
                f"rollout.refresh_every: {self.refresh_every} would sample "
                f"{self.refresh_every} versions behind: set rollout.refresh_every: 1"
            )
        return self


def default_mixture(domain: str, teachers: list[str]) -> dict[str, float]:
    """Own teacher OWN_TEACHER_WEIGHT, the others sharing the rest equally (alone: 1)."""
    others = sorted(d for d in set(teachers) if d != domain)
    if not others:
        return {domain: 1.0}
    share = (1.0 - OWN_TEACHER_WEIGHT) / len(others)
    return {domain: OWN_TEACHER_WEIGHT} | dict.fromkeys(others, share)


def mixture_problems(weights: dict[str, dict[str, float]], teachers: list[str]) -> list[str]:
    """What is wrong with soft-routing weights, one line per problem (empty: none)."""
    known = sorted(set(teachers))
    problems = []
    for domain, mix in weights.items():
        if domain not in known:
            problems.append(f"sample domain {domain!r} has no teacher (teachers: {known})")
        unknown = sorted(set(mix) - set(known))
        if unknown:
            problems.append(f"{domain!r} mixes unknown teacher(s) {unknown} (teachers: {known})")
        negative = sorted(d for d, w in mix.items() if not w >= 0)
        if negative:
            problems.append(f"{domain!r} gives negative weight(s) to {negative}")
        total = math.fsum(mix.values())
        if not abs(total - 1.0) <= WEIGHT_SUM_TOLERANCE:
            problems.append(
                f"{domain!r} weights sum to {total:g}, not 1: they are the mixture's "
                "probabilities and are not rescaled for you"
            )
    return problems


class DistillConfig(BaseModel):
    """Everything one OPD run needs; saved as `config.yaml` in `output_dir`.

    A step is one rollout batch; it makes `minibatches x epochs` optimizer updates.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- models and data ----------------------------------------------------------------------
    model: str = Field(description="the student: short name, checkpoint dir or hub id")
    dtype: Precision = Field(
        default="auto",
        description="the student's precision, as SFT's: auto is bfloat16 autocast over float32 "
        "weights on a GPU that supports it, else float32 (the teachers have their own dtype)",
    )
    teachers: tuple[TeacherSpec, ...]
    tasks: tuple[Path, ...] = Field(description="task stores (directories) the prompts come from")
    corpus: dict[str, tuple[Path, ...]] = Field(default_factory=dict, description="domain -> files")
    rollout: RolloutConfig = RolloutConfig()
    # ---- objective ----------------------------------------------------------------------------
    loss: DistillLossConfig = DistillLossConfig()
    domain_loss_weights: dict[str, float] = Field(
        default_factory=dict,
        description="relative weight of each domain's mean in the domain-normalised loss "
        "(missing: 1; all equal is the spec)",
    )
    routing: Routing = Field(
        default="hard",
        description="hard: a sample is scored by its own domain's teacher only (the spec); "
        "soft: by a probability-space mixture of the teachers (`routing_weights`)",
    )
    routing_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="soft routing: sample domain -> {teacher domain: weight}, weights >= 0 "
        f"summing to 1; a domain not given: its own teacher {OWN_TEACHER_WEIGHT}, the other "
        "teachers sharing the rest equally",
    )
    # ---- optimisation -------------------------------------------------------------------------
    steps: int = Field(default=20, ge=1, description="rollout batches")
    minibatches: int = Field(
        default=1, ge=1, description="optimizer steps per rollout batch (shuffled, split evenly)"
    )
    epochs: int = Field(default=1, ge=1, description="passes over each rollout batch")
    lr: float = Field(default=1e-5, gt=0)
    schedule: Literal["cosine", "constant"] = "constant"
    warmup_ratio: float = Field(default=0.0, ge=0, le=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    micro_batch_size: int = Field(default=4, ge=1, description="sequences per forward pass")
    max_grad_norm: float | None = 1.0
    seed: int = 0
    # ---- run ----------------------------------------------------------------------------------
    output_dir: Path = Path("runs/distill")
    final_dir: Path | None = None  # default: output_dir / "final"
    save_every: int = Field(
        default=10, ge=1, description="steps between checkpoints (see `checkpoint_every`)"
    )
    keep_checkpoints: int = Field(default=2, ge=1)
    log_every: int = Field(default=1, ge=1)
    resume: bool = True  # continue from the latest checkpoint in output_dir
    tensorboard: bool = True
    num_threads: int | None = Field(default=None, ge=1)  # CPU threads of this process
    parallel: Parallel = Field(
        default="none",
        description="none, or ddp / fsdp2 under torchrun: each rank rolls out and scores its "
        "share of the step's prompts; gradients are summed over ranks (fsdp2: the student "
        "sharded, a whole replica per rank for rollouts and scoring)",
    )
    token_monitors: int = Field(
        default=5,
        ge=0,
        description="per-token KL and coverage, with this many teacher and student top-k ids, "
        "to token_monitors.jsonl (0: off)",
    )

    @model_validator(mode="after")
    def _check(self) -> DistillConfig:
        if any(w < 0 for w in self.domain_loss_weights.values()):
            raise ValueError("domain_loss_weights must be >= 0")
        if self.domain_loss_weights and self.loss.aggregation != "domain":
            raise ValueError("domain_loss_weights needs loss.aggregation: domain")
        self._check_routing()
        if (
            self.rollout.backend != "hf"
            and self.loss.kind in STUDENT_TOPK_KINDS
            and self.rollout.refresh_every > 1
        ):
            raise ValueError(
                f"loss.kind {self.loss.kind} takes the rollout policy's top-k from the student "
                "in this process, which matches a vllm engine's weights only when it is synced "
                "every step: set rollout.refresh_every: 1, or rollout.backend: hf"
            )
        return self

    def _check_routing(self) -> None:
        if self.routing == "hard":
            if self.routing_weights:
                raise ValueError(
                    "routing_weights is set but routing is hard (each sample is scored by its "
                    "own domain's teacher only): set routing: soft to mix teachers"
                )
            return
        served = sorted(t.domain for t in self.teachers if t.backend != "hf")
        if served:
            raise ValueError(
                "routing: soft mixes the teachers' full-vocabulary distributions in this "
                "process, which only in-process teachers (backend: hf) can supply; the "
                f"teacher(s) for {served} are served (backend: openai), whose prompt_logprobs "
                "return only their own top-k. Use backend hf for every teacher, or routing: hard"
            )
        problems = mixture_problems(self.routing_weights, [t.domain for t in self.teachers])
        if problems:
            raise ValueError("routing_weights: " + "; ".join(problems))

    def teacher_mixture(self, domain: str) -> dict[str, float] | None:
        """Soft routing: teacher domain -> weight (> 0) for samples of `domain`; hard: None."""
        if self.routing == "hard":
            return None
        weights = self.routing_weights.get(domain)
        if weights is None:
            weights = default_mixture(domain, [t.domain for t in self.teachers])
        return {d: w for d, w in sorted(weights.items()) if w > 0}

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        names = (*ROUTING_FIELDS, *PARALLEL_FIELDS, *PRECISION_FIELDS)
        return omit_at_default(self, handler(self), names)

    @property
    def final_path(self) -> Path:
        return self.final_dir or self.output_dir / "final"

    @property
    def checkpoint_every(self) -> int:
        """`save_every` rounded up to a multiple of `rollout.refresh_every`: a checkpoint then
        falls on a refresh step, where the resumed run's snapshot is the checkpointed student."""
        refresh = self.rollout.refresh_every
        return -(-self.save_every // refresh) * refresh

    @property
    def updates_per_step(self) -> int:
        return self.minibatches * self.epochs

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def fingerprint(self) -> str:
        """Hash of the fields that decide the loss curve (not logging nor run bookkeeping)."""
        return config_fingerprint(self, {"token_monitors", *PARALLEL_FIELDS, *ENGINE_PLACE})
