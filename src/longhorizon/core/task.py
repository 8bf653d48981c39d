"""A task x = (q, d, tau, y*, E_q, V_q) and the protocol it is solved under."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.provenance import Provenance

SCHEMA_VERSION = 1


class Budgets(BaseModel):
    """T_max turns, L_resp tokens per response, L_ctx tokens of context."""

    model_config = ConfigDict(frozen=True)

    max_turns: int = Field(default=30, ge=1, description="T_max")
    max_response_tokens: int = Field(default=1024, ge=1, description="L_resp")
    max_context_tokens: int = Field(default=32768, ge=16, description="L_ctx")


class ContextStrategy(BaseModel):
    """How the harness keeps the context within L_ctx (see the harness docs)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["hard_cap", "keep_last_k", "compaction", "restart"] = "hard_cap"
    keep_last: int = Field(default=5, ge=1, description="observations kept by keep_last_k")
    compact_at: float = Field(default=0.8, gt=0, le=1, description="share of L_ctx that triggers")
    max_restarts: int = Field(default=5, ge=1, description="attempts for restart")


class Finalisation(BaseModel):
    """How the final answer is read off the last assistant message."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["answer_tag", "last_message"] = "answer_tag"
    tag: str = "answer"


class Protocol(BaseModel):
    """Tools, budgets, finalisation rule and context strategy for one domain's episodes."""

    model_config = ConfigDict(frozen=True)

    tools: tuple[str, ...] = ()
    budgets: Budgets = Field(default_factory=Budgets)
    finalisation: Finalisation = Field(default_factory=Finalisation)
    context: ContextStrategy = Field(default_factory=ContextStrategy)
    system_prompt: str | None = None


class VerifierSpec(BaseModel):
    """A verifier by name and parameters: one verifier serves evaluation, reward, filtering."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class Task(BaseModel):
    """q = instruction, d = domain, y* = answer, E_q = evidence, V_q = verifiers."""

    schema_version: int = SCHEMA_VERSION
    id: str
    domain: str
    instruction: str
    answer: str | None = None
    evidence: list[str] = Field(default_factory=list)
    verifiers: list[VerifierSpec] = Field(default_factory=list)
    protocol: Protocol = Field(default_factory=Protocol)
    provenance: Provenance = Field(default_factory=Provenance)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def with_budgets(
        self,
        max_turns: int | None = None,
        max_response_tokens: int | None = None,
        max_context_tokens: int | None = None,
    ) -> Task:
        """This task under tighter or looser budgets (None keeps the protocol's own)."""
        budgets = self.protocol.budgets
        update = {
            "max_turns": max_turns or budgets.max_turns,
            "max_response_tokens": max_response_tokens or budgets.max_response_tokens,
            "max_context_tokens": max_context_tokens or budgets.max_context_tokens,
        }
        protocol = self.protocol.model_copy(update={"budgets": budgets.model_copy(update=update)})
        return self.model_copy(update={"protocol": protocol})
