"""Settings of an evaluation run, shared by every benchmark adapter, and the sampling per seed.

Seeds: seed 0 decodes greedily (the headline number, reproducible); seed k > 0 samples at
`temperature` (0.7 by default, top-p 1) with generator seed k, so several seeds measure how
much a score moves under sampling. Every request of seed k uses seed k; on the hf backend a
seeded request samples the same tokens whatever batch it shares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from longhorizon.core.sampling import SamplingParams
from longhorizon.domains.spec import HELDOUT_SEED
from longhorizon.serving.summariser import SummariserConfig

# Single-turn benchmarks (IFEval, MolBench): tokens per response unless --max-tokens says
# otherwise. 1024 covers IFEval's longest asks (e.g. "at least 600 words" is ~800 tokens);
# a response cut at the limit is scored as it stands.
DEFAULT_MAX_TOKENS = 1024
SAMPLING_TEMPERATURE = 0.7
# Near-duplicate rule of the held-out audit: share of an item's 13-grams found in one task.
NEAR_DUPLICATE_CONTAINMENT = 0.9


class RayEpisodes(BaseModel):
    """`eval --ray`: where held-out episodes run, and the model every worker opens itself."""

    model_config = ConfigDict(frozen=True)

    address: str = Field(description="`local`, `auto` or HOST:PORT, as `rollout --ray`")
    workers: int = Field(default=2, ge=1)
    model: str
    backend: Literal["hf", "openai", "vllm"] = "hf"
    base_url: str | None = None
    tokenizer: str | None = None


class JudgeSettings(BaseModel):
    """`eval --judge-base-url --judge-model`: the LLM judge of answers a verifier cannot check."""

    model_config = ConfigDict(frozen=True)

    base_url: str = Field(description="an OpenAI-compatible server (http://host:port or .../v1)")
    model: str = Field(description="the model name the server knows")
    max_tokens: int = Field(default=2048, ge=1, description="tokens per judge reply")
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="environment variable holding the API key, if any"
    )
    timeout_s: float = Field(default=300.0, gt=0, description="seconds to wait for reply bytes")


class EvalOptions(BaseModel):
    """What `longhorizon eval` passes to the adapters (defaults are the documented ones)."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="tokens per response: default 1024 for single-turn benches; for held-out "
        "episodes it overrides each task's L_resp",
    )
    batch_size: int = Field(default=8, ge=1, description="hf batch size / requests in flight")
    limit: int | None = Field(default=None, ge=1, description="first K items only")
    temperature: float = Field(default=SAMPLING_TEMPERATURE, gt=0)
    data_dir: Path | None = Field(default=None, description="benchmark data (default: shared)")
    show_progress: bool = True
    # held-out benches
    train_tasks: Path | None = Field(default=None, description="TaskStore dir to audit against")
    heldout_seed: int = Field(default=HELDOUT_SEED, ge=HELDOUT_SEED)
    audit_rule: Literal["near-duplicate", "any-13gram"] = "near-duplicate"
    containment: float = Field(default=NEAR_DUPLICATE_CONTAINMENT, gt=0, le=1)
    max_turns: int | None = Field(default=None, ge=1, description="overrides each task's T_max")
    max_context_tokens: int | None = Field(default=None, ge=16, description="overrides L_ctx")
    levels: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="domain -> its level config, as synthesis' (a domain not named: its default)",
    )
    world_seed: int = Field(default=0, description="as synthesis' seed: the same world")
    ray: RayEpisodes | None = Field(
        default=None, description="run held-out episodes on Ray workers (None: in process)"
    )
    judge: JudgeSettings | None = Field(
        default=None, description="the LLM judge (None: items that need one are unscored)"
    )
    summariser: SummariserConfig | None = Field(
        default=None, description="held-out: the model visit asks to answer its goal"
    )

    def tokens(self) -> int:
        return self.max_tokens or DEFAULT_MAX_TOKENS


def sampling_for_seed(
    seed: int, max_tokens: int, temperature: float = SAMPLING_TEMPERATURE
) -> SamplingParams:
    """Greedy for seed 0; temperature sampling with generator seed `seed` otherwise."""
    if seed == 0:
        return SamplingParams(temperature=0.0, max_tokens=max_tokens)
    return SamplingParams(temperature=temperature, seed=seed, max_tokens=max_tokens)
