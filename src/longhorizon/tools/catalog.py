"""Every tool by name, and the ToolSet a protocol declares by listing tool names.

Tools are loaded on first use: `python` lives in its own module (with its sandbox machinery)
and nothing here should import it before a protocol or the CLI asks for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence

from longhorizon.tools.base import Tool, ToolSet, Truncator, truncate_chars

# name -> (module, attribute): where each Tool object is defined.
_SOURCES: dict[str, tuple[str, str]] = {
    "calculator": ("longhorizon.tools.calculator", "calculator"),
    "search": ("longhorizon.tools.knowledge", "search"),
    "visit": ("longhorizon.tools.knowledge", "visit"),
    "python": ("longhorizon.tools.python_tool", "python"),
    "write_notes": ("longhorizon.tools.knowledge", "write_notes"),
    "read_notes": ("longhorizon.tools.knowledge", "read_notes"),
    "web_search": ("longhorizon.tools.knowledge", "web_search"),
    **{
        name: ("longhorizon.tools.chem", name)
        for name in (
            "canonicalize",
            "descriptors",
            "substructure",
            "similarity",
            "rule_filter",
            "affinity_proxy",
        )
    },
    **{
        name: ("longhorizon.tools.mle.harness", name)
        for name in (
            "write_full_code",
            "patch_code",
            "execute_code",
            "list_nodes",
            "select_node",
            "invalidate_node",
            "update_answer",
            "get_current_answer",
        )
    },
    **{
        name: ("longhorizon.tools.worlds", name)
        for name in (
            "ask_user",
            "find_user",
            "list_orders",
            "get_order",
            "cancel_order",
            "update_address",
            "find_flights",
            "list_bookings",
            "get_booking",
            "book_flight",
            "cancel_booking",
        )
    },
}


class UnknownToolError(ValueError):
    """A tool name that is not in the catalog; the message lists the known names."""


class _LazyTools(Mapping[str, Tool]):
    """A read-only name -> Tool mapping that imports a tool's module on first lookup."""

    def __init__(self, sources: Mapping[str, tuple[str, str]]) -> None:
        self._sources = dict(sources)
        self._loaded: dict[str, Tool] = {}

    def __getitem__(self, name: str) -> Tool:
        if name not in self._sources:
            raise KeyError(name)
        if name not in self._loaded:
            module, attr = self._sources[name]
            self._loaded[name] = getattr(importlib.import_module(module), attr)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)


TOOLS: Mapping[str, Tool] = _LazyTools(_SOURCES)


def build_toolset(names: Sequence[str], truncate: Truncator = truncate_chars) -> ToolSet:
    """The ToolSet of the named tools (in the given order, duplicates once)."""
    unknown = [n for n in names if n not in TOOLS]
    if unknown:
        raise UnknownToolError(
            f"unknown tool(s) {', '.join(map(repr, unknown))}; known tools: {', '.join(TOOLS)}"
        )
    return ToolSet([TOOLS[n] for n in dict.fromkeys(names)], truncate=truncate)
