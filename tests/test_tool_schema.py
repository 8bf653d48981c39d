"""Tool schemas from signatures and docstrings (docstring_parser: Google, NumPy and reST)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longhorizon.tools.base import Tool, tool
from longhorizon.tools.catalog import TOOLS

GOLDEN = Path(__file__).parent / "data" / "builtin_tool_schemas.json"
QUERY = "the words to look for, which may run over two lines and mention ratio: 3 to 1"
K = "how many results; note: at most 20"


def test_every_builtin_tool_schema_is_unchanged() -> None:
    # Written by the hand-made parser before the switch to docstring_parser.
    golden = json.loads(GOLDEN.read_text())
    assert sorted(golden) == sorted(TOOLS)
    for name in TOOLS:
        assert TOOLS[name].spec.model_dump(mode="json") == golden[name], name


@tool
def google(query: str, k: int = 5) -> str:
    """Search the collection
    for documents.

    A second paragraph that is not part of the summary.

    Args:
        query: the words to look for, which may run
            over two lines and mention ratio: 3 to 1
        k (int): how many results; note: at most 20
    """
    return query * k


@tool
def numpy_style(query: str, k: int = 5) -> str:
    """Search the collection
    for documents.

    A second paragraph that is not part of the summary.

    Parameters
    ----------
    query : str
        the words to look for, which may run
        over two lines and mention ratio: 3 to 1
    k : int, optional
        how many results; note: at most 20
    """
    return query * k


@tool
def rest_style(query: str, k: int = 5) -> str:
    """Search the collection
    for documents.

    A second paragraph that is not part of the summary.

    :param query: the words to look for, which may run
        over two lines and mention ratio: 3 to 1
    :param k: how many results; note: at most 20
    """
    return query * k


@pytest.mark.parametrize("made", [google, numpy_style, rest_style], ids=lambda t: t.name)
def test_every_style_gives_the_same_schema(made: Tool) -> None:
    assert made.description == "Search the collection for documents."
    assert made.parameters == {
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": QUERY},
            "k": {"type": "integer", "description": K, "default": 5},
        },
        "required": ["query"],
    }


def test_a_colon_in_a_continuation_line_is_not_a_parameter() -> None:
    @tool
    def f(text: str) -> str:
        """Echo.

        Args:
            text: what to echo; for example
                key: value pairs are echoed too
        """
        return text

    assert list(f.parameters["properties"]) == ["text"]
    expected = "what to echo; for example key: value pairs are echoed too"
    assert f.parameters["properties"]["text"]["description"] == expected


def test_no_docstring_gives_an_empty_description() -> None:
    def bare(x: int, y: Any = None) -> int:
        return x

    made = tool(bare)
    assert made.description == ""
    assert made.parameters == {
        "type": "object",
        "properties": {"x": {"type": "integer"}, "y": {}},
        "required": ["x"],
    }
