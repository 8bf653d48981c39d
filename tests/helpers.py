"""Shared test constants: the calculator tool and what the tiny tool caller says."""

from __future__ import annotations

from longhorizon.core import Message
from longhorizon.models.tool_caller import ANSWER_TEXT, CALL_TEXT, QUESTION
from longhorizon.tools.calculator import calculator

CALCULATOR = calculator.spec
QUESTION_MESSAGES = [Message(role="user", content=QUESTION)]

__all__ = ["ANSWER_TEXT", "CALCULATOR", "CALL_TEXT", "QUESTION_MESSAGES"]
