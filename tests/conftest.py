"""Shared fixtures: tiny seeded models (built once per machine) and the real SmolLM2-135M."""

from __future__ import annotations

import pytest

from longhorizon.models.registry import resolve_model


@pytest.fixture(scope="session")
def tiny_llama_path() -> str:
    return resolve_model("tiny-llama")


@pytest.fixture(scope="session")
def tiny_qwen2_path() -> str:
    return resolve_model("tiny-qwen2")


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    return resolve_model("smollm2-135m")


@pytest.fixture(scope="session")
def tiny_backend(tiny_llama_path: str):  # type: ignore[no-untyped-def]
    from longhorizon.models.hf import HFBackend

    return HFBackend.from_pretrained(tiny_llama_path)


@pytest.fixture(scope="session")
def tool_caller_path() -> str:
    return resolve_model("tiny-tool-caller")


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """ONE real vLLM (CPU) server on loopback serving SmolLM2-135M in float32, per session."""
    from longhorizon.serving.vllm import VLLMServer, default_venv, vllm_available

    if not vllm_available():
        pytest.skip(f"no vLLM environment at {default_venv()}: run scripts/setup_vllm.sh")
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    with VLLMServer("smollm2-135m", max_model_len=2048, log_path=log) as server:
        yield server
