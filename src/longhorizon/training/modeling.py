"""Model side of a training run: precision, packed-attention isolation, loading."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from longhorizon.training.config import SFTConfig
from longhorizon.training.packing import Isolation

T = TypeVar("T")


def precision(choice: str, device: torch.device) -> tuple[torch.dtype, torch.dtype | None]:
    """(parameter dtype, autocast dtype): bf16 autocast keeps float32 master weights."""
    if choice == "float64":
        return torch.float64, None
    if choice == "bfloat16" or (
        choice == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()
    ):
        return torch.float32, torch.bfloat16
    return torch.float32, None


def autocast_context(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager[Any]:
    """Autocast to `dtype` (the second half of `precision`) on `device`; None: none at all."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def at_output_layer(model: nn.Module, fn: Callable[[Tensor, Tensor], T], **inputs: Any) -> T:
    """`fn(hidden, head weight)` of the model's forward on `inputs`, computed at its output
    layer's input: inside the forward, where FSDP2 holds the layer's unsharded weight. The
    layer itself is handed zero positions, so no logits are built."""
    inner = getattr(model, "module", model)  # a DDP wrapper's model
    head: nn.Module = inner.get_output_embeddings()  # type: ignore[operator]
    found: list[T] = []

    def take_hidden(module: nn.Module, args: tuple[Tensor, ...]) -> tuple[Tensor]:
        weight = module.weight
        assert isinstance(weight, Tensor)
        found.append(fn(args[0], weight))
        return (args[0][:, :0],)

    handle = head.register_forward_pre_hook(take_hidden)
    try:
        model(**inputs, use_cache=False)
    finally:
        handle.remove()
    return found[0]


def resolve_isolation(choice: str, attn_implementation: str, device: torch.device) -> Isolation:
    """How packed samples are kept apart; `auto` picks the fastest that is exact.

    flash/varlen kernels read sequence boundaries from restarting positions. On CPU, sdpa's
    backward is ~4x faster with our float additive mask than with the boolean mask that
    transformers builds from the positions (measured on the tiny model, 2K-token rows); on
    GPU the boolean mask takes a quarter of the memory of a float one.
    """
    flash = attn_implementation.startswith("flash")
    if choice == "mask" and flash:
        raise ValueError("flash attention takes no 4D mask: use isolation position_ids or auto")
    if choice != "auto":
        return choice  # type: ignore[return-value]
    if flash:
        return "position_ids"
    from transformers import masking_utils

    # transformers turns restarting positions into a block-diagonal mask when it has this.
    reads_positions = hasattr(masking_utils, "find_packed_sequence_indices")
    return "position_ids" if reads_positions and device.type != "cpu" else "mask"


# Layer kinds that packing isolates (a block mask or restarting positions); any other kind
# (linear attention, state-space layers) carries a state from one packed sample into the next.
ATTENTION_LAYERS = frozenset(
    {"attention", "full_attention", "sliding_attention", "chunked_attention"}
)
# Models made of recurrent layers only, whose configs list no layer kinds.
RECURRENT_MODELS = frozenset({"mamba", "mamba2", "falcon_mamba", "rwkv", "xlstm"})


class PackingError(ValueError):
    """`packing: true` for a model whose layers carry state across packed samples."""


def check_packing(cfg: SFTConfig) -> None:
    """Refuse packing for a model with recurrent layers (read from its config, before its
    weights load): its packed samples would see the ones before them. The layer kinds come
    from `layer_types` or `layers_block_type`; a model that mixes kinds inside each layer
    and names none of them is not caught."""
    from transformers import AutoConfig

    from longhorizon.models.registry import resolve_model

    if not cfg.packing:
        return
    config = AutoConfig.from_pretrained(resolve_model(cfg.model))
    config = getattr(config, "text_config", None) or config
    kinds = getattr(config, "layer_types", None) or getattr(config, "layers_block_type", None)
    recurrent = sorted(set(kinds or ()) - ATTENTION_LAYERS)
    if config.model_type in RECURRENT_MODELS:
        recurrent = [config.model_type]
    if recurrent:
        raise PackingError(
            f"packing lays samples end to end, but {cfg.model}'s {', '.join(recurrent)} layers "
            "carry a state across them (a packed sample would see the one before): set "
            "packing: false (one sample per row, padded)"
        )


def load_model(cfg: SFTConfig, dtype: torch.dtype, device: torch.device) -> Any:
    from transformers import AutoModelForCausalLM

    from longhorizon.models.registry import resolve_model

    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model: Any = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model), **kwargs)
    model.to(device)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def load_tokenizer(cfg: SFTConfig) -> Any:
    from transformers import AutoTokenizer

    from longhorizon.models.registry import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(cfg.tokenizer or cfg.model))


def pad_token_id(config: Any) -> int:
    """The id that padding micro-batches hold (never trained, never attended to by real rows)."""
    for candidate in (config.pad_token_id, config.eos_token_id, 0):
        if isinstance(candidate, int):
            return candidate
    return 0
