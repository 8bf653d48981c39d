"""Least-loaded routing over several model servers, an episode's turns kept on one server.

The decisions are checked exactly on `LeastLoadedRouter`; then `RoutedBackend` over two real
in-process backends runs concurrent episodes through the harness, and every request of an
episode reaches the same backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from longhorizon.core import Budgets, Protocol, SamplingParams, Task
from longhorizon.harness import BackendAgent, EpisodeRunner, HarnessConfig
from longhorizon.models.hf import HFBackend
from longhorizon.models.router import (
    LeastLoadedRouter,
    RoutedBackend,
    current_episode,
    episode_scope,
)
from longhorizon.models.tool_caller import QUESTION
from longhorizon.models.types import Completion
from longhorizon.tools.catalog import build_toolset
from longhorizon.verifiers import verify_answer


def test_new_episodes_go_to_the_least_loaded_server_and_stay_there() -> None:
    router = LeastLoadedRouter(3)
    assert [router.acquire(k) for k in ("a", "b", "c")] == [0, 1, 2]
    assert router.in_flight == [1, 1, 1] and router.episodes == [1, 1, 1]
    router.done(1)  # b's request answered: server 1 is now the least loaded
    assert router.acquire("d") == 1
    assert router.acquire("a") == 0  # a's next turn: pinned, though 0 is not least loaded
    assert router.in_flight == [2, 1, 1] and router.pins == {"a": 0, "b": 1, "c": 2, "d": 1}


def test_ties_go_to_fewer_live_episodes_then_to_the_first_listed() -> None:
    router = LeastLoadedRouter(2)
    assert router.acquire("a") == 0
    router.done(0)  # 0 and 1 both idle; 0 holds episode a
    assert router.acquire("b") == 1
    router.done(1)
    router.release("a")  # a ended: both idle, no live episodes, so the first listed wins
    assert router.episodes == [0, 1]
    assert router.acquire("c") == 0


def test_requests_outside_an_episode_route_by_load_and_pin_nothing() -> None:
    router = LeastLoadedRouter(2)
    assert router.acquire(None) == 0
    assert router.acquire(None) == 1
    assert router.acquire(None) == 0
    assert router.pins == {} and router.episodes == [0, 0] and router.in_flight == [2, 1]


def test_bad_use_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one server"):
        LeastLoadedRouter(0)
    with pytest.raises(ValueError, match="server 0 has no request in flight"):
        LeastLoadedRouter(1).done(0)
    with pytest.raises(ValueError, match="at least one backend"):
        RoutedBackend([])


def test_episode_scope_nests_and_runs_its_undo_on_exit() -> None:
    undone: list[str] = []
    assert current_episode() is None
    with episode_scope("outer") as outer:
        outer.on_close.append(lambda: undone.append("outer"))
        with episode_scope("inner"):
            assert current_episode() is not None and current_episode().key == "inner"  # type: ignore[union-attr]
        assert current_episode() is outer and undone == []
    assert current_episode() is None and undone == ["outer"]


class Recording:
    """A real backend, and the episode of each request it answered (None: none)."""

    def __init__(self, backend: HFBackend) -> None:
        self.backend = backend
        self.model_id = backend.model_id
        self.tokenizer = backend.tokenizer
        self.episodes: list[str | None] = []

    async def generate(self, prompt_ids: list[int], params: SamplingParams) -> Completion:
        scope = current_episode()
        self.episodes.append(scope.key if scope else None)
        return await self.backend.generate(prompt_ids, params)

    async def aclose(self) -> None:
        await self.backend.aclose()


def test_routed_episodes_keep_every_turn_on_one_backend(
    tool_caller_path: str, tmp_path: Path
) -> None:
    servers = [Recording(HFBackend.from_pretrained(tool_caller_path)) for _ in range(2)]
    routed = RoutedBackend(servers)  # type: ignore[arg-type]
    protocol = Protocol(tools=("calculator",), budgets=Budgets(max_turns=4, max_response_tokens=48))
    tasks = [
        Task(
            id=f"add-{i}", domain="arithmetic", instruction=QUESTION, answer="5", protocol=protocol
        )
        for i in range(6)
    ]
    runner = EpisodeRunner(
        BackendAgent(routed),  # type: ignore[arg-type]
        lambda t: build_toolset(t.protocol.tools),
        HarnessConfig(workdir=tmp_path),
        verify=verify_answer,
    )

    async def go() -> list[bool]:
        trajs = await asyncio.gather(*(runner.run(t, t.id) for t in tasks))
        await routed.aclose()
        return [t.passed for t in trajs]

    assert asyncio.run(go()) == [True] * 6
    seen = [set(s.episodes) for s in servers]
    assert seen[0] | seen[1] == {t.id for t in tasks} and not seen[0] & seen[1]
    assert len(seen[0]) == len(seen[1]) == 3  # six episodes started together: three each
    assert [len(s.episodes) for s in servers] == [6, 6] == routed.served  # two turns each
    assert routed.router.pins == {} and routed.router.in_flight == [0, 0]  # all released
