"""Configuration of the Stage-3 distillation loss: objective, aggregation, chunk sizes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LossKind = Literal["sva", "full_rkl", "sampled_token", "student_topk", "union", "sva_tail"]
Aggregation = Literal["token", "sample", "domain"]


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
    aggregation:
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
    # Ids never used as salient outcomes (special/control tokens). Ids < 0 (padding) and ids >= V
    # (outside the student's output layer) are always excluded.
    excluded_ids: tuple[int, ...] = ()
    # Positions per chunk for the k-row gather (memory ~ position_chunk * k * H) and for the
    # streaming vocabulary passes (memory ~ position_chunk * vocab_chunk).
    position_chunk: int = Field(default=128, ge=1)
    vocab_chunk: int = Field(default=16384, ge=1)
    # Positions per chunk for the full-vocabulary reverse KL (memory ~ a few * chunk * V).
    full_position_chunk: int = Field(default=128, ge=1)
    # Student coverage of the teacher's top-k under the full softmax (no gradient). It costs one
    # full-vocabulary forward pass (streamed), so a trainer may compute it only every few steps.
    monitor_coverage: bool = True
