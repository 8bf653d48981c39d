"""Stage-3 on-policy distillation: SVA (salient vocabulary alignment) and its ablation losses."""

from longhorizon.distill.config import Aggregation, DistillLossConfig, LossKind
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
    "DistillLossConfig",
    "DistillMetrics",
    "DistillOutput",
    "DomainMetrics",
    "LossKind",
    "StudentHead",
    "TeacherSignal",
    "TokenLayout",
    "chunked_full_rkl",
    "chunked_logsumexp",
    "distill_loss",
    "gather_logits",
    "streaming_logsumexp",
    "student_topk_ids",
    "sva_loss",
]
