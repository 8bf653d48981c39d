"""Model names: short names, checkpoint directories and hub ids resolve; anything else is a
clear usage error, not a hub download traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from longhorizon.models.registry import UnknownModelError, resolve_model


def test_a_checkpoint_directory_and_a_hub_id_resolve_as_given(tiny_llama_path: str) -> None:
    assert resolve_model(tiny_llama_path) == tiny_llama_path
    assert resolve_model("Qwen/Qwen3.5-35B-A3B") == "Qwen/Qwen3.5-35B-A3B"  # loads on use


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no-such-model", r"'no-such-model' is not a short name \(smollm2-135m, tiny-llama,"),
        ("./nowhere/ckpt", r"'\./nowhere/ckpt': no such checkpoint directory"),
        ("runs/x/sft/final", r"'runs/x/sft/final': no such checkpoint directory"),
    ],
)
def test_a_name_that_names_nothing_is_refused(name: str, message: str) -> None:
    with pytest.raises(UnknownModelError, match=message):
        resolve_model(name)


def test_a_folder_without_config_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"has no config\.json"):
        resolve_model(str(tmp_path))


def test_the_cli_prints_the_error_without_a_traceback(tmp_path: Path) -> None:
    args = ["eval", "--bench", "ifeval", "--model", "no-such-model", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "longhorizon.cli.main", *args], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: model 'no-such-model' is not a short name")
    assert "Traceback" not in done.stderr and not list(tmp_path.iterdir())  # nothing written
