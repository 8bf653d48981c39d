"""The simulated user as a language model: its prompt, its dialogue memory, its failures, and
an episode in which a real model (SmolLM2-135M) plays the user behind ask_user."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from longhorizon.core import Task
from longhorizon.domains.tool import ToolLevel, propose_task, screen
from longhorizon.models.hf import HFBackend
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.serving.vllm import free_port
from longhorizon.tools.types import ToolContext
from longhorizon.tools.user_model import DEFAULT_PARAMS, persona_messages, persona_prompt
from longhorizon.tools.worlds import ask_user


def _task_with_email(seed: int = 0) -> Task:
    rng = random.Random(seed)
    while True:
        task = propose_task(ToolLevel(expert_error_rate=0.0), rng, world_seed=rng.randrange(10**6))
        if screen(task) is None and "email" in task.metadata["persona"]["details"]:
            return task


async def _ask(task: Task, question: str, resources: dict[str, Any], state: dict[str, Any]) -> Any:
    ctx = ToolContext(episode_id="e", workdir=Path("."), resources=resources, task=task)
    ctx.state = state
    return await ask_user.run({"question": question}, ctx)


def test_prompt_holds_the_goal_details_and_confirmation_id() -> None:
    task = _task_with_email()
    persona = task.metadata["persona"]
    prompt = persona_prompt(task)
    assert prompt.startswith(f"You are {persona['name']}, a customer")
    assert f"You want this done: {task.instruction}" in prompt
    for slot, value in persona["details"].items():
        assert f"- {slot.replace('_', ' ')}: {value}\n" in prompt
    assert f"it names {persona['confirm_id']};" in prompt


def test_dialogue_is_the_models_own_side_of_the_chat() -> None:
    task = _task_with_email()
    messages = persona_messages(task, [("Your email?", "a@b.test")], "Confirm O1?")
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert [m.content for m in messages[1:]] == ["Your email?", "a@b.test", "Confirm O1?"]


def test_a_real_model_plays_the_user_and_remembers_the_dialogue(smollm2_path: str) -> None:
    task = _task_with_email()
    email = task.metadata["persona"]["details"]["email"]
    state: dict[str, Any] = {}

    async def dialogue() -> tuple[Any, Any, Any]:
        smollm2 = HFBackend.from_pretrained(smollm2_path)  # one backend, one event loop
        first = await _ask(task, "What is your email address?", {"user_model": smollm2}, state)
        direct = await smollm2.chat(
            persona_messages(task, [], "What is your email address?"), DEFAULT_PARAMS
        )
        second = await _ask(task, "Which booking is it about?", {"user_model": smollm2}, state)
        await smollm2.aclose()
        return first, direct, second

    first, direct, second = asyncio.run(dialogue())
    assert first.error is None
    assert first.content == (direct.message.content or "").strip()  # greedy: the same reply
    assert email in first.content.lower()  # the model read its private details
    assert state["user_dialogue"] == [
        ("What is your email address?", first.content),
        ("Which booking is it about?", second.content),
    ]


def test_without_a_user_model_the_scripted_persona_answers() -> None:
    task = _task_with_email()
    email = task.metadata["persona"]["details"]["email"]
    result = asyncio.run(_ask(task, "What is your email?", {}, {}))
    assert result.content == f"My email is {email}." and result.error is None


def test_an_empty_reply_is_a_tool_error(tiny_backend: HFBackend) -> None:
    result = asyncio.run(
        _ask(_task_with_email(), "What is your email?", {"user_model": tiny_backend}, {})
    )
    assert result.error == "the user model returned an empty reply"  # random weights emit EOS


def test_a_dead_user_server_is_a_tool_error_not_a_crash() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"

    async def ask() -> Any:
        async with OpenAIBackend(dead, model="user", max_retries=0, connect_timeout_s=1.0) as b:
            return await _ask(_task_with_email(), "What is your email?", {"user_model": b}, {})

    result = asyncio.run(ask())
    assert result.error is not None and result.error.startswith("the user model failed: ")
    assert result.content.startswith("Error: the user model failed: ")
