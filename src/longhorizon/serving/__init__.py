"""Model servers longhorizon starts itself (vLLM's CPU build, for tests and local runs)."""

from longhorizon.serving.vllm import (
    VLLMServer,
    VLLMServerError,
    cpu_env_defaults,
    default_venv,
    vllm_available,
)

__all__ = ["VLLMServer", "VLLMServerError", "cpu_env_defaults", "default_venv", "vllm_available"]
