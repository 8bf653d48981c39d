"""The visit summariser as a run setting: its config, the resources it opens, and its wiring
into synthesis, `rollout`, evaluation and the OPD / GRPO rollout configs (issue 14)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer
from typer.testing import CliRunner

from longhorizon.cli.main import app
from longhorizon.core import Message, Protocol, Task, TrajectoryStore
from longhorizon.core.messages import FunctionCall, ToolCall
from longhorizon.distill.config import RolloutConfig
from longhorizon.evaluation.episodes import run_episodes
from longhorizon.evaluation.options import EvalOptions
from longhorizon.harness import ScriptedAgent
from longhorizon.models.render import ChatRenderer
from longhorizon.rl.config import RLRolloutConfig
from longhorizon.scaleout import RolloutSpec, open_runner
from longhorizon.serving.summariser import (
    SummariserConfig,
    shared_summariser,
    summariser_resources,
)
from longhorizon.tools.catalog import build_toolset
from longhorizon.tools.corpus import CorpusIndex
from longhorizon.tools.types import ToolContext
from longhorizon.verifiers import verify_answer

PAGES = [
    {"id": "paris", "title": "Paris", "text": "Paris lies on the river Seine.", "links": []},
    {"id": "lisbon", "title": "Lisbon", "text": "Lisbon lies on the Tagus estuary."},
]
GOAL = "Which river flows through Paris?"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "pages.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PAGES))
    return path


@pytest.fixture
def summariser(tiny_llama_path: str) -> SummariserConfig:
    return SummariserConfig(model=tiny_llama_path, max_tokens=6)


async def visit_with_goal(resources: dict[str, Any], tmp_path: Path) -> str:
    """visit's observation of paris under GOAL, with these resources."""
    ctx = ToolContext(episode_id="direct", workdir=tmp_path, resources=resources)
    call = ToolCall(
        id="c",
        function=FunctionCall(name="visit", arguments=json.dumps({"id": "paris", "goal": GOAL})),
    )
    return (await build_toolset(["visit"]).execute(call, ctx)).content


def test_a_served_summariser_needs_its_url_and_none_leaves_no_resources() -> None:
    with pytest.raises(ValidationError, match=r"backend openai needs summariser\.base_url"):
        SummariserConfig(model="m", backend="openai")

    async def opened() -> dict[str, Any]:
        async with summariser_resources(None) as resources:
            return resources

    assert asyncio.run(opened()) == {}


def test_a_block_holding_the_summariser_open_shares_it_with_nested_openings(
    summariser: SummariserConfig,
) -> None:
    other = summariser.model_copy(update={"max_tokens": 7})

    async def opened() -> tuple[bool, bool, bool]:
        async with summariser_resources(summariser) as outer:
            async with summariser_resources(summariser) as same:
                shared = same["summariser"] is outer["summariser"]
            async with summariser_resources(other) as own:
                separate = own["summariser"] is not outer["summariser"]
        async with summariser_resources(summariser) as later:  # the block closed: a new one
            fresh = later["summariser"] is not outer["summariser"]
        return shared, separate, fresh

    assert asyncio.run(opened()) == (True, True, True)


def test_a_shared_block_opens_the_summariser_at_the_first_asking_and_never_unasked(
    summariser: SummariserConfig,
) -> None:
    missing = SummariserConfig(model="no-such-summariser-model")

    async def unasked() -> str:
        async with shared_summariser(missing):  # opening this one would fail
            return "never opened"

    async def asked() -> tuple[bool, bool]:
        async with shared_summariser(summariser):
            async with summariser_resources(summariser) as first:
                pass
            async with summariser_resources(summariser) as second:  # still open: shared
                shared = second["summariser"] is first["summariser"]
        async with summariser_resources(summariser) as later:  # the block closed it
            fresh = later["summariser"] is not first["summariser"]
        return shared, fresh

    assert asyncio.run(unasked()) == "never opened"
    assert asyncio.run(asked()) == (True, True)


def test_the_opened_summariser_answers_visit_greedily_within_its_tokens(
    summariser: SummariserConfig, corpus: Path, tmp_path: Path
) -> None:
    async def opened() -> tuple[str, str, int]:
        async with summariser_resources(summariser) as resources:
            resources = {**resources, "corpus_index": CorpusIndex.open(corpus)}
            first = await visit_with_goal(resources, tmp_path)
            second = await visit_with_goal(resources, tmp_path)
            return first, second, resources["summariser_params"].max_tokens

    first, second, tokens = asyncio.run(opened())
    assert tokens == 6
    assert first.startswith(f"Document [paris]: Paris\nGoal: {GOAL}\n\nEvidence:\n- Paris lies")
    assert "\n\nSummary:\n" in first and "summariser failed" not in first
    assert first == second  # greedy: the same page view every time


def test_held_out_episodes_read_the_summariser_of_their_options(
    summariser: SummariserConfig, corpus: Path, tiny_llama_path: str, tmp_path: Path
) -> None:
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))

    def script(messages: list[Message]) -> str:
        if messages[-1].role == "tool":
            return "<answer>Seine</answer>"
        args = {"name": "visit", "arguments": {"id": "paris", "goal": GOAL}}
        return f"<tool_call>\n{json.dumps(args)}\n</tool_call>"

    task = Task(
        id="river",
        domain="search",
        instruction=GOAL,
        answer="Seine",
        protocol=Protocol(tools=("visit",)),
    )
    index = CorpusIndex.open(corpus)
    options = EvalOptions(summariser=summariser, show_progress=False)
    asyncio.run(
        run_episodes(
            "search-heldout",
            ScriptedAgent(renderer, script),
            [task],
            0,
            options,
            bench_dir=tmp_path / "bench",
            toolsets=lambda t: build_toolset(t.protocol.tools),
            verify=verify_answer,
            resources={"corpus_index": index},
        )
    )
    (trajectory,) = list(TrajectoryStore(tmp_path / "bench" / "trajectories-seed0"))
    observation = next(m.content for m in trajectory.messages if m.role == "tool")

    async def direct() -> str:
        async with summariser_resources(summariser) as resources:
            both = {**resources, "corpus_index": index}
            return await visit_with_goal(both, tmp_path)

    assert observation == asyncio.run(direct())
    assert "\n\nSummary:\n" in observation


def test_a_rollout_runner_opens_its_specs_summariser(
    summariser: SummariserConfig, tiny_llama_path: str, tmp_path: Path
) -> None:
    spec = RolloutSpec(model=tiny_llama_path, summariser=summariser)

    async def resources() -> tuple[str, int]:
        async with open_runner(spec) as runner:
            params = runner.resources["summariser_params"]
            return type(runner.resources["summariser"]).__name__, params.max_tokens

    assert asyncio.run(resources()) == ("HFBackend", 6)
    # picklable for Ray workers, each of which opens its own
    assert RolloutSpec.model_validate_json(spec.model_dump_json()) == spec


def test_opd_and_grpo_rollouts_take_a_summariser_and_omit_it_unset() -> None:
    for cls in (RolloutConfig, RLRolloutConfig):
        assert "summariser" not in cls().model_dump()
        cfg = cls.model_validate({"summariser": {"model": "smollm2-135m", "max_tokens": 64}})
        assert cfg.model_dump()["summariser"] == {
            "model": "smollm2-135m",
            "backend": "hf",
            "base_url": None,
            "max_tokens": 64,
        }


def test_synthesis_builds_its_domain_with_the_summariser(
    tiny_llama_path: str, tmp_path: Path
) -> None:
    from longhorizon.domains import registry
    from longhorizon.domains.synth import domain_builder
    from longhorizon.kag import KnowledgeActionGraph

    spec = registry.get("search")
    level = spec.parse_level({"entities": 60, "hops": [1, 2]})
    marker = object()
    build = domain_builder(spec, level, 0, tmp_path, {"summariser": marker})
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))
    with KnowledgeActionGraph(tmp_path / "kag.db") as kag:
        domain = build(kag, renderer, None)
    assert domain.resources["summariser"] is marker
    assert "corpus_index" in domain.resources  # the world's own resources stay


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--summariser-backend", "openai"], "--summariser-backend and --summariser-url need"),
        (["--summariser", "m", "--summariser-backend", "openai"], "needs summariser.base_url"),
    ],
)
def test_the_cli_refuses_a_summariser_it_cannot_open(
    args: list[str], message: str, tmp_path: Path
) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("")
    common = ["--model", "tiny-llama", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, ["rollout", "--tasks", str(tasks), *common, *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
