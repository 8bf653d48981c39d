"""Third-party progress bars, library logs and warnings go to a log file, not the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from longhorizon.core import Budgets, Protocol, Task
from longhorizon.models.checkpoints import home
from longhorizon.models.tool_caller import QUESTION

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(tmp_path: Path) -> dict[str, str]:
    # A fresh LONGHORIZON_HOME (its logs/ is ours to read) that still sees the built models.
    fresh = tmp_path / "home"
    fresh.mkdir()
    (fresh / "models").symlink_to(home() / "models", target_is_directory=True)
    path = os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "LONGHORIZON_HOME": str(fresh), "PYTHONPATH": path}


def test_a_cli_command_loading_a_model_keeps_stderr_clean(
    tool_caller_path: str, tmp_path: Path
) -> None:
    protocol = Protocol(tools=("calculator",), budgets=Budgets(max_turns=3))
    task = Task(id="add", domain="arithmetic", instruction=QUESTION, answer="5", protocol=protocol)
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(task.model_dump_json() + "\n")
    cmd = [sys.executable, "-m", "longhorizon.cli.main", "rollout", "--tasks", str(tasks)]
    cmd += ["--model", tool_caller_path, "--out", str(tmp_path / "out")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Loading weights" not in proc.stderr
    assert "it/s]" not in proc.stderr  # no tqdm bar of any library
    assert "episodes (total)" in proc.stdout  # our table stays on the terminal
    log = (tmp_path / "home" / "logs" / "cli.log").read_text()
    assert "Loading weights: 100%" in log


ROUTE = """
import logging, sys, warnings
from pathlib import Path
from tqdm.auto import tqdm
from transformers.utils import logging as hf_logging
from longhorizon.core.logs import log_file, send_third_party_to

target = None if sys.argv[1] == "-" else Path(sys.argv[1])
send_third_party_to(target)
assert log_file() == target
warnings.warn("a library warning")
hf_logging.get_logger("transformers.modeling_utils").warning("a transformers warning")
logging.getLogger("huggingface_hub.file_download").warning("a hub warning")
for _ in tqdm(range(3), desc="Converting and de-quantizing GGUF tensors..."):
    pass
print("our line")
"""


def _route(target: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", ROUTE, target]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(tmp_path), timeout=120)


def test_warnings_library_logs_and_bars_reach_the_log_file_only(tmp_path: Path) -> None:
    log = tmp_path / "run" / "run.log"
    proc = _route(str(log), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == "our line\n"
    text = log.read_text()
    assert "WARNING py.warnings: " in text and "UserWarning: a library warning" in text
    assert "WARNING transformers.modeling_utils: a transformers warning" in text
    assert "WARNING huggingface_hub.file_download: a hub warning" in text
    assert "Converting and de-quantizing GGUF tensors...: 100%" in text


def test_without_a_log_file_third_party_output_is_dropped(tmp_path: Path) -> None:
    proc = _route("-", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout == "our line\n"
