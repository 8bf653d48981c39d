"""Core types shared by every part of the pipeline: tasks, trajectories, tokens, storage."""

from longhorizon.core.messages import FunctionCall, Message, ToolCall, ToolSpec
from longhorizon.core.provenance import Provenance, RunProvenance, code_version
from longhorizon.core.sampling import SamplingParams
from longhorizon.core.store import JsonlStore, TaskStore, TrajectoryStore
from longhorizon.core.task import (
    Budgets,
    ContextStrategy,
    Finalisation,
    Protocol,
    Task,
    VerifierSpec,
)
from longhorizon.core.tokens import (
    ModelCall,
    TokenLogprob,
    TokenSequence,
    call_prompt,
    call_sequence,
    leaf_calls,
)
from longhorizon.core.trajectory import Status, Step, Timings, Trajectory, Usage, Verdict

__all__ = [
    "Budgets",
    "ContextStrategy",
    "Finalisation",
    "FunctionCall",
    "JsonlStore",
    "Message",
    "ModelCall",
    "Protocol",
    "Provenance",
    "RunProvenance",
    "SamplingParams",
    "Status",
    "Step",
    "Task",
    "TaskStore",
    "Timings",
    "TokenLogprob",
    "TokenSequence",
    "ToolCall",
    "ToolSpec",
    "Trajectory",
    "TrajectoryStore",
    "Usage",
    "Verdict",
    "VerifierSpec",
    "call_prompt",
    "call_sequence",
    "code_version",
    "leaf_calls",
]
