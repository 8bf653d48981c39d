"""The typed SFT configuration (defaults mirror the Agents-A1 report) and YAML loading.

Report values: lr 1e-5 with cosine decay, warmup 5%, batch 16, 1 epoch, max length 131,072,
AdamW with weight decay 0.1. Our choices where the report is silent: AdamW betas (0.9, 0.95),
no weight decay on biases and norm weights, gradient clipping at 1.0, decay to 0, and a batch
counted in packed rows of `max_len` tokens (so 16 x 131,072 tokens per step at most).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from longhorizon.training.chunked_ce import DEFAULT_CHUNK
from longhorizon.training.data import DataConfig

Parallel = Literal["none", "ddp", "fsdp2"]
Precision = Literal["auto", "bfloat16", "float32", "float64"]
IsolationChoice = Literal["auto", "position_ids", "mask"]
Normalisation = Literal["token", "sample"]

C = TypeVar("C", bound=BaseModel)


class SFTLossConfig(BaseModel):
    """How the cross-entropy is computed (not what it is: both paths give the same loss)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Trained positions per output-layer chunk (training/chunked_ce.py): the T x V logits are
    # never built, forward or backward. null: the materialised reference, logits at every
    # trained position at once (several T x V float32 tensors: 6.4 GB each at 32K x 49,152).
    chunk_size: int | None = Field(default=DEFAULT_CHUNK, ge=1)


class SFTConfig(BaseModel):
    """Everything one SFT run needs; frozen once resolved, saved as `config.yaml` in the run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ---- model ----------------------------------------------------------------------------
    model: str = "tiny-llama"  # short name, checkpoint dir or hub id (models.registry)
    tokenizer: str | None = None  # default: the model's own
    attn_implementation: str | None = None  # None: transformers' default (sdpa)
    # auto: bfloat16 autocast over float32 weights where the GPU supports it, else float32.
    # float64 exists for reference tests.
    dtype: Precision = "auto"
    gradient_checkpointing: bool = False
    # ---- data -----------------------------------------------------------------------------
    data: DataConfig = DataConfig()
    max_len: int = Field(default=131072, ge=2)
    packing: bool = True
    # auto: restarting positions for flash/varlen kernels and for sdpa/eager on GPU (transformers
    # builds the block-diagonal mask from them); an explicit float 4D mask on CPU (faster there).
    isolation: IsolationChoice = "auto"
    loss_normalisation: Normalisation = "token"
    loss: SFTLossConfig = SFTLossConfig()
    # ---- optimisation ---------------------------------------------------------------------
    lr: float = Field(default=1e-5, gt=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_ratio: float = Field(default=0.05, ge=0, le=1)
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    epochs: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)  # overrides epochs (smoke runs)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    batch_size: int = Field(default=16, ge=1)  # packed rows per optimizer step, all ranks
    micro_batch_size: int = Field(default=1, ge=1)  # packed rows per forward pass
    grad_accum: int | None = Field(default=None, ge=1)  # None: batch / (micro x world)
    max_grad_norm: float | None = 1.0
    seed: int = Field(default=0, ge=0)  # numpy's seeds are unsigned
    # ---- run ------------------------------------------------------------------------------
    output_dir: Path = Path("runs/sft")
    final_dir: Path | None = None  # default: output_dir / "final"
    save_every: int = Field(default=500, ge=1)  # steps between resumable checkpoints
    keep_checkpoints: int = Field(default=2, ge=1)
    log_every: int = Field(default=1, ge=1)
    resume: bool = True  # continue from the latest checkpoint in output_dir
    tensorboard: bool = True
    parallel: Parallel = "none"
    num_threads: int | None = Field(default=None, ge=1)  # CPU threads per process

    @model_validator(mode="after")
    def _check_accumulation(self) -> SFTConfig:
        if self.grad_accum is not None and self.batch_size % self.grad_accum:
            raise ValueError("batch_size must be a multiple of grad_accum")
        return self

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per rank per optimizer step."""
        per_rank, rest = divmod(self.batch_size, world_size * self.micro_batch_size)
        if rest or per_rank == 0:
            raise ValueError(
                f"batch_size {self.batch_size} is not a multiple of micro_batch_size "
                f"{self.micro_batch_size} x world size {world_size}"
            )
        if self.grad_accum is not None and self.grad_accum != per_rank:
            raise ValueError(
                f"grad_accum {self.grad_accum} != batch_size / (micro_batch_size x world size) "
                f"= {per_rank}"
            )
        return per_rank

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Added after SFT runs were cached; both loss paths agree to float rounding, so at its
        # default it stays out of their content keys and checkpoint fingerprints.
        return omit_at_default(self, handler(self), ("loss",))

    @property
    def final_path(self) -> Path:
        return self.final_dir or self.output_dir / "final"

    def to_yaml(self) -> str:
        """Every field, `loss` included (the printed and saved config shows what ran)."""
        fields = self.model_dump(mode="json")
        fields.setdefault("loss", self.loss.model_dump(mode="json"))
        return yaml.safe_dump(fields, sort_keys=False)

    def fingerprint(self) -> str:
        """Hash of the fields that decide the loss curve (not logging, nor the parallelism)."""
        return config_fingerprint(self, {"parallel"})


# Run bookkeeping every trainer config carries: never part of what decides the curve.
RUN_FIELDS = frozenset(
    {"output_dir", "final_dir", "save_every", "keep_checkpoints", "log_every", "resume"}
    | {"tensorboard", "num_threads"}
)


def config_fingerprint(cfg: BaseModel, skip: set[str] | frozenset[str] = frozenset()) -> str:
    """Hash of a trainer config without its run bookkeeping (`RUN_FIELDS`) and `skip` (field
    names, or dotted paths into nested configs): a checkpoint refuses to resume under a config
    whose hash differs."""
    nested = {name for name in skip if "." in name}
    fields = cfg.model_dump(mode="json", exclude=set(RUN_FIELDS | (set(skip) - nested)))
    for path in nested:
        *parents, leaf = path.split(".")
        node: Any = fields
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def omit_at_default(
    cfg: BaseModel, dumped: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    """`dumped` without the fields `names` that hold their default value.

    For fields added to a config after runs were cached: content keys (`ablate/keys.py`) and
    checkpoint fingerprints hash the dump, so a new field left at its default must not appear
    in it, or every earlier key would change for a config that did not."""
    fields = type(cfg).model_fields
    for name in names:
        if name in dumped and getattr(cfg, name) == fields[name].get_default(
            call_default_factory=True
        ):
            del dumped[name]
    return dumped


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """`a.b=value` sets tree['a']['b']; the value is parsed as YAML (numbers, lists, null)."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"override {assignment!r} is not KEY=VALUE")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ValueError(f"override {assignment!r}: {part} is not a mapping")
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ValueError(
            f"override {assignment!r}: the value is not YAML ({_first_line(exc)})"
        ) from None


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_config_tree(path: Path | None) -> dict[str, Any]:
    """The YAML file as a mapping ({} without a file)."""
    if path is None:
        return {}
    try:
        tree = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: the config must be a YAML mapping")
    return tree


def load_config(cls: type[C], path: Path | None, overrides: list[str] | None = None) -> C:
    """Defaults, then the YAML file, then `KEY=VALUE` overrides; validated by `cls`."""
    tree = read_config_tree(path)
    for assignment in overrides or []:
        apply_override(tree, assignment)
    return cls.model_validate(tree)
