"""Finalisation rules: how a final answer is read off the model's last message."""

from __future__ import annotations

import re

from longhorizon.core.task import Finalisation


def extract_answer(rule: Finalisation, text: str | None) -> str | None:
    """The final answer under `rule`, or None when the message does not give one."""
    if text is None:
        return None
    if rule.kind == "last_message":
        return text.strip() or None
    tag = re.escape(rule.tag)
    found = re.findall(rf"<{tag}>(.*?)</{tag}>", text, flags=re.DOTALL)
    return found[-1].strip() if found else None


def force_answer_prompt(rule: Finalisation, reason: str) -> str:
    """The explicit prompt that asks for a final answer when a budget is reached."""
    how = (
        f"inside <{rule.tag}></{rule.tag}>"
        if rule.kind == "answer_tag"
        else "as your final message"
    )
    return (
        f"You have reached the {reason}. Do not call any more tools. "
        f"Give your best final answer now, {how}."
    )
