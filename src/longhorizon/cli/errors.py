"""How a command reports bad input: one line on stderr, then exit 2."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["print_error", "usage_error"]


def print_error(message: str) -> None:
    """`error: MESSAGE` on stderr, the message as text (paths and [lists] are not markup)."""
    text = Text.assemble(("error: ", "red"), message)
    Console(stderr=True).print(text, highlight=False, soft_wrap=True)


def usage_error(message: str) -> NoReturn:
    print_error(message)
    raise typer.Exit(code=2)
