"""The simulated user as a language model: the option beside the scripted persona.

`ask_user` calls it when `resources["user_model"]` holds a `Backend` (HF, vLLM or any
OpenAI-compatible server). The model plays the task's persona from `user_persona.jinja`: it
holds the private details and the id it would confirm, and sees the episode's earlier
questions and its own replies (kept in the tool context's state), so the dialogue is
consistent across turns. Its replies are observations, masked in training like any tool output.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

from longhorizon.core.messages import Message
from longhorizon.core.sampling import SamplingParams
from longhorizon.core.task import Task

__all__ = ["DEFAULT_PARAMS", "UserModelError", "persona_messages", "persona_prompt", "reply"]

DEFAULT_PARAMS = SamplingParams(temperature=0.0, max_tokens=96)  # greedy: one persona, one reply
DIALOGUE_KEY = "user_dialogue"  # ctx.state entry: the episode's (question, reply) pairs


class UserModelError(RuntimeError):
    """The user model failed or said nothing; the agent sees it as the tool's error."""


@cache
def _template() -> jinja2.Template:
    text = resources.files("longhorizon.tools").joinpath("user_persona.jinja").read_text()
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(text)


def persona_prompt(task: Task) -> str:
    """The system prompt for `task`'s persona: its goal, private details and confirmation id."""
    persona: dict[str, Any] = task.metadata.get("persona", {})
    return (
        _template()
        .render(
            name=persona.get("name", "the customer"),
            goal=task.instruction,
            details=persona.get("details", {}),
            confirm_id=persona.get("confirm_id", ""),
        )
        .strip()
    )


def persona_messages(task: Task, dialogue: list[tuple[str, str]], question: str) -> list[Message]:
    """The model's view: the agent's questions are its user turns, its replies its own turns."""
    messages = [Message(role="system", content=persona_prompt(task))]
    for asked, answered in dialogue:
        messages += [
            Message(role="user", content=asked),
            Message(role="assistant", content=answered),
        ]
    return [*messages, Message(role="user", content=question)]


async def reply(
    backend: Any, task: Task, state: dict[str, Any], question: str, params: SamplingParams
) -> str:
    """Ask the user model; the pair is remembered for the episode's later questions."""
    dialogue: list[tuple[str, str]] = state.setdefault(DIALOGUE_KEY, [])
    try:
        result = await backend.chat(persona_messages(task, dialogue, question), params)
    except Exception as exc:  # a crashed server must not crash the episode
        raise UserModelError(f"the user model failed: {type(exc).__name__}: {exc}") from exc
    text = (result.message.content or "").strip()
    if not text:
        raise UserModelError("the user model returned an empty reply")
    dialogue.append((question, text))
    return text
