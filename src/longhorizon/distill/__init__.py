"""Stage-3 on-policy distillation: SVA (salient vocabulary alignment) and its ablation losses.

- config:  DistillConfig, RolloutConfig, DistillLossConfig, TeacherSpec
- trainer: Distiller, run_distill (setup / train / cleanup, exact resume)
- step:    optimizer_update, accumulate_gradients (the batch objective over micro-batches)
- losses:  distill_loss, sva_loss and the memory-bounded kernels
"""

from longhorizon.distill.config import (
    Aggregation,
    DistillConfig,
    DistillLossConfig,
    LossKind,
    RolloutConfig,
    TeacherSpec,
)
from longhorizon.distill.kernels import (
    chunked_full_rkl,
    chunked_logsumexp,
    gather_logits,
    streaming_logsumexp,
    student_topk_ids,
)
from longhorizon.distill.losses import distill_loss, sva_loss
from longhorizon.distill.types import (
    DistillMetrics,
    DistillOutput,
    DomainMetrics,
    StudentHead,
    TeacherSignal,
    TokenLayout,
)

__all__ = [
    "Aggregation",
    "DistillConfig",
    "DistillLossConfig",
    "DistillMetrics",
    "DistillOutput",
    "DomainMetrics",
    "LossKind",
    "RolloutConfig",
    "StudentHead",
    "TeacherSignal",
    "TeacherSpec",
    "TokenLayout",
    "chunked_full_rkl",
    "chunked_logsumexp",
    "distill_loss",
    "gather_logits",
    "streaming_logsumexp",
    "student_topk_ids",
    "sva_loss",
]
