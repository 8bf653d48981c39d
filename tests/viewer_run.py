"""The run the viewer tests open: the micro pipeline (`longhorizon run`, every stage, real
tiny models) plus one scripted episode with a rolled-back turn, a forced final answer and
model text that tries to inject a script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from transformers import AutoTokenizer

from longhorizon.core import Budgets, Protocol, Task, Trajectory, TrajectoryStore
from longhorizon.harness import EpisodeRunner, HarnessConfig, ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer
from tests.test_pipeline import MICRO

SCRIPTED_STORE = "scripted/trajectories"
INJECTION = "<script>window.__pwned = 1</script><b>bold?</b>"
TOOL_INJECTION = "<img src=x onerror=window.__pwned=2>"  # the calculator's error echoes it


def artifacts_dir(name: str) -> Path:
    """Where tests leave screenshots: $LONGHORIZON_TEST_ARTIFACTS or tests/artifacts/."""
    root = os.environ.get("LONGHORIZON_TEST_ARTIFACTS") or Path(__file__).parent / "artifacts"
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def micro_run(out: Path) -> Path:
    """`longhorizon run` on the micro recipe with one SFT step (about 40 s on 2 cores)."""
    recipe = {**MICRO, "out": str(out), "sft": {**MICRO["sft"], "max_steps": 1}}
    path = out.parent / "micro-view.yaml"
    path.write_text(yaml.safe_dump(recipe))
    command = [sys.executable, "-m", "longhorizon.cli.main", "run", str(path)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _call(expression: str) -> str:
    body = json.dumps({"name": "calculator", "arguments": {"expression": expression}})
    return f"<tool_call>\n{body}\n</tool_call>"


def scripted_episode(run: Path) -> Trajectory:
    """Two tool turns at T_max = 2: the second is rolled back and an answer is forced. The
    model's text carries a script, and the first tool call makes the tool echo an <img>."""
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(run / "sft" / "final"))

    def script(messages: list) -> str:  # type: ignore[type-arg]
        if "final answer" in (messages[-1].content or ""):
            return f"{INJECTION} <answer>5</answer>"
        first = not any(m.role == "tool" for m in messages)
        return f"{INJECTION} {_call(TOOL_INJECTION if first else '2 + 3')}"

    task = Task(
        id="scripted-1",
        domain="arith",
        instruction="What is 2 + 3?",
        answer="5",
        protocol=Protocol(
            tools=("calculator",),
            budgets=Budgets(max_turns=2, max_response_tokens=256, max_context_tokens=4096),
        ),
    )
    runner = EpisodeRunner(
        ScriptedAgent(renderer, script),
        lambda t: build_toolset(t.protocol.tools),
        HarnessConfig(workdir=run.parent / "scripted-work"),
        verify=verify_answer,
    )
    traj = asyncio.run(runner.run(task, "scripted-1#0"))
    with TrajectoryStore(run / SCRIPTED_STORE) as store:
        store.add(traj)
    return traj
