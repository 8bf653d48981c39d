"""Episodes with a real model: in-process (hf) and through a real vLLM server (openai backend).

Both store trajectories whose token ids and masks pass the alignment check, and greedy
decoding of the same weights gives the same tokens through either path.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from longhorizon.core import Budgets, Protocol, Status, Task, Trajectory, TrajectoryStore
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig, run_rollouts
from longhorizon.models.alignment import alignment_problems, check_alignment
from longhorizon.models.hf import HFBackend
from longhorizon.models.tool_caller import QUESTION
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer

PROTOCOL = Protocol(tools=("calculator",), budgets=Budgets(max_turns=4, max_response_tokens=48))
TASKS = [
    Task(id=f"add-{i}", domain="arithmetic", instruction=QUESTION, answer="5", protocol=PROTOCOL)
    for i in range(3)
]


def rollout(agent: BackendAgent, out: Path) -> list[Trajectory]:
    runner = EpisodeRunner(
        agent,
        lambda t: build_toolset(t.protocol.tools),
        HarnessConfig(workdir=out / "w"),
        verify=verify_answer,
    )
    store = TrajectoryStore(out / "s")

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await run_rollouts(runner, TASKS, store, concurrency=3, show_progress=False)
        finally:
            await agent.backend.aclose()  # in the loop that opened its connections

    report = asyncio.run(go())
    assert report.finished == 3 and report.aborted == 0
    store.close()
    return sorted(TrajectoryStore(out / "s"), key=lambda t: t.id)


def assert_solved_and_aligned(trajs: list[Trajectory], agent: BackendAgent) -> None:
    for traj in trajs:
        assert traj.status is Status.COMPLETED and traj.passed, traj.status_reason
        assert [s.observation for s in traj.steps] == ["5"]
        assert traj.usage.model_calls == 2
        check_alignment(traj, agent.renderer)


@pytest.fixture(scope="module")
def hf_trajectories(tool_caller_path: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    agent = BackendAgent(HFBackend.from_pretrained(tool_caller_path))
    return agent, rollout(agent, tmp_path_factory.mktemp("hf"))


def test_hf_episodes_are_solved_and_aligned(hf_trajectories) -> None:  # type: ignore[no-untyped-def]
    agent, trajs = hf_trajectories
    assert_solved_and_aligned(trajs, agent)
    assert all(t.provenance.backend == "hf" for t in trajs)


def test_alignment_check_catches_corruption(hf_trajectories) -> None:  # type: ignore[no-untyped-def]
    agent, (traj, *_) = hf_trajectories
    assert alignment_problems(traj, agent.renderer) == []
    broken = traj.model_copy(deep=True)
    broken.calls[1].new_prompt_ids = broken.calls[1].new_prompt_ids[:-1]  # lost a token
    assert "prompt does not end with the generation prompt" in " ".join(
        alignment_problems(broken, agent.renderer)
    )
    edited = traj.model_copy(deep=True)
    edited.messages[-1].content = "<answer>6</answer>"
    with pytest.raises(ValueError, match="differ from the chat template's rendering"):
        check_alignment(edited, agent.renderer)


@pytest.mark.vllm
def test_vllm_episodes_match_hf(  # type: ignore[no-untyped-def]
    tool_caller_path: str, hf_trajectories, tmp_path: Path
) -> None:
    from longhorizon.models.openai_backend import OpenAIBackend
    from longhorizon.serving.vllm import VLLMServer, default_venv, vllm_available

    if not vllm_available():
        pytest.skip(f"no vLLM environment at {default_venv()}: run scripts/setup_vllm.sh")
    with VLLMServer(tool_caller_path, served_model_name="caller", max_model_len=1024) as server:

        async def make():  # type: ignore[no-untyped-def]
            return OpenAIBackend(server.base_url, model="caller", tokenizer=tool_caller_path)

        backend = asyncio.run(make())
        trajs = rollout(BackendAgent(backend), tmp_path)
    agent, hf_trajs = hf_trajectories
    assert_solved_and_aligned(trajs, agent)
    assert all(t.provenance.backend == "openai" for t in trajs)
    for ours, ref in zip(trajs, hf_trajs, strict=True):
        assert [c.completion_ids for c in ours.calls] == [c.completion_ids for c in ref.calls]
        assert ours.token_sequences() == ref.token_sequences()
