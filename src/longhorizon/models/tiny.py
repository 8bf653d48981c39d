"""Tiny seeded random models built from a config, sharing SmolLM2's tokenizer and template."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from longhorizon.models.checkpoints import build_once, home, smollm2_checkpoint

Architecture = Literal["llama", "qwen2", "qwen3_5_moe"]


class TinyModelConfig(BaseModel):
    """A small decoder (Llama or Qwen2 style); the defaults make a ~6.7M-parameter model.
    `qwen3_5_moe` is the agents-a1 student's family: layers alternate linear attention (gated
    delta rule) and full attention, each with 4 experts (2 per token) and a shared expert.

    Head size 64 because vLLM's CPU attention kernels support only common head sizes.
    """

    model_config = ConfigDict(frozen=True)

    architecture: Architecture = "llama"
    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = True
    seed: int = 0

    def slug(self) -> str:
        return (
            f"tiny-{self.architecture}-h{self.hidden_size}-l{self.num_hidden_layers}"
            f"-i{self.intermediate_size}-s{self.seed}"
        )


def _hf_config(cfg: TinyModelConfig, vocab_size: int, bos: int, eos: int, pad: int) -> object:
    from transformers import LlamaConfig, Qwen2Config, Qwen3_5MoeTextConfig

    fields = cfg.model_dump(exclude={"architecture", "seed"})
    if cfg.architecture == "qwen3_5_moe":
        head = cfg.hidden_size // cfg.num_attention_heads
        kinds = ("linear_attention", "full_attention")
        expert = cfg.intermediate_size // 4
        fields |= {
            "head_dim": head,
            "layer_types": [kinds[i % 2] for i in range(cfg.num_hidden_layers)],
            "linear_num_key_heads": cfg.num_attention_heads,
            "linear_num_value_heads": cfg.num_attention_heads,
            "linear_key_head_dim": head,
            "linear_value_head_dim": head,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "moe_intermediate_size": expert,
            "shared_expert_intermediate_size": expert,
        }
        del fields["intermediate_size"]
    config_class = {
        "llama": LlamaConfig,
        "qwen2": Qwen2Config,
        "qwen3_5_moe": Qwen3_5MoeTextConfig,
    }[cfg.architecture]
    return config_class(
        vocab_size=vocab_size,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        rms_norm_eps=1e-5,
        dtype="float32",
        **fields,
    )


def build_tiny(cfg: TinyModelConfig, out: Path) -> None:
    """Seeded random weights; tokenizer and chat template from the SmolLM2 checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_checkpoint())
    config = _hf_config(
        cfg,
        len(tokenizer),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def tiny_checkpoint(cfg: TinyModelConfig | None = None) -> Path:
    cfg = cfg or TinyModelConfig()
    return build_once(home() / "models" / cfg.slug(), lambda out: build_tiny(cfg, out))
