"""Tools as typed Python functions: schema from the signature and docstring, safe execution.

Every failure (bad or missing arguments, an exception, a timeout, an unknown tool, a malformed
call) becomes an error observation the model sees; `ToolSet.execute` never raises.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import docstring_parser
from pydantic import TypeAdapter, ValidationError

from longhorizon.core.messages import ToolCall, ToolSpec
from longhorizon.tools.types import ToolContext, ToolResult

TRUNCATION_MARKER = "\n[... output truncated: {dropped} of {total} tokens not shown ...]"
CONTEXT_PARAM = "ctx"  # a parameter with this name receives the ToolContext, not model input


class ToolArgumentError(ValueError):
    """The model's arguments do not fit the tool's signature."""


def _json_schema(annotation: Any) -> dict[str, Any]:
    schema = TypeAdapter(annotation).json_schema()
    schema.pop("title", None)
    return schema


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _param_docs(doc: docstring_parser.Docstring) -> dict[str, str]:
    """Parameter name -> its description, continuation lines joined into one line."""
    return {p.arg_name: _one_line(p.description) for p in doc.params if p.description}


def _summary(doc: docstring_parser.Docstring) -> str:
    """The first paragraph of the description (sections such as Args: are not part of it)."""
    description = doc.description or ""
    return _one_line(description.split("\n\n", 1)[0])


def parse_docstring(fn: Callable[..., Any]) -> docstring_parser.Docstring:
    """A function's docstring in Google, NumPy or reST style (docstring_parser picks the one
    that finds the most sections; a hand-written parser dropped continuation lines and read
    any description line holding ":" as a new parameter)."""
    return docstring_parser.parse(inspect.getdoc(fn) or "")


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (Union, types.UnionType) and type(None) in typing.get_args(annotation)


@dataclass
class Tool:
    """A callable tool with its OpenAI schema, a timeout and an output budget in tokens."""

    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Any]
    timeout_s: float = 60.0
    max_output_tokens: int = 2048

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    @functools.cached_property
    def _params(self) -> dict[str, tuple[TypeAdapter[Any], bool]]:
        """Per model-facing parameter: its validator and whether it is required (built once:
        adapters cost far more than validating with them)."""
        hints = typing.get_type_hints(self.fn)
        return {
            name: (TypeAdapter(hints.get(name, Any)), param.default is inspect.Parameter.empty)
            for name, param in inspect.signature(self.fn).parameters.items()
            if name != CONTEXT_PARAM
        }

    @functools.cached_property
    def _takes_context(self) -> bool:
        return CONTEXT_PARAM in inspect.signature(self.fn).parameters

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Arguments checked and converted against the signature (ToolArgumentError if not)."""
        known = self._params
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ToolArgumentError(f"unknown argument(s) {unknown}; expected {sorted(known)}")
        out = {}
        for name, (adapter, required) in self._params.items():
            if name not in arguments:
                if required:
                    raise ToolArgumentError(f"missing required argument {name!r}")
                continue
            try:
                out[name] = adapter.validate_python(arguments[name])
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"]
                raise ToolArgumentError(f"argument {name!r}: {problem}") from None
        return out

    async def run(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        kwargs = self.validate(arguments)
        if self._takes_context:
            kwargs[CONTEXT_PARAM] = ctx
        if inspect.iscoroutinefunction(self.fn):
            return await asyncio.wait_for(self.fn(**kwargs), self.timeout_s)
        return await asyncio.wait_for(asyncio.to_thread(self.fn, **kwargs), self.timeout_s)


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    timeout_s: float = 60.0,
    max_output_tokens: int = 2048,
) -> Any:
    """Decorator: a typed function (sync or async) becomes a Tool; its docstring gives the text."""

    def wrap(f: Callable[..., Any]) -> Tool:
        doc = parse_docstring(f)
        hints = typing.get_type_hints(f)
        param_docs = _param_docs(doc)
        properties, required = {}, []
        for pname, param in inspect.signature(f).parameters.items():
            if pname == CONTEXT_PARAM:
                continue
            schema = _json_schema(hints.get(pname, Any))
            if pname in param_docs:
                schema["description"] = param_docs[pname]
            if param.default is inspect.Parameter.empty and not _is_optional(hints.get(pname)):
                required.append(pname)
            elif param.default is not inspect.Parameter.empty and param.default is not None:
                schema["default"] = param.default
            properties[pname] = schema
        parameters = {"type": "object", "properties": properties, "required": required}
        return Tool(name or f.__name__, _summary(doc), parameters, f, timeout_s, max_output_tokens)

    return wrap(fn) if fn is not None else wrap


Truncator = Callable[[str, int], tuple[str, bool]]


def truncate_chars(text: str, budget_tokens: int) -> tuple[str, bool]:
    """Fallback truncation at ~4 characters per token when no tokenizer is given."""
    limit = budget_tokens * 4
    if len(text) <= limit:
        return text, False
    dropped = (len(text) - limit) // 4
    return text[:limit] + TRUNCATION_MARKER.format(dropped=dropped, total=len(text) // 4), True


def tokenizer_truncator(tokenizer: Any) -> Truncator:
    """Truncate to a token budget with the model's own tokenizer, marking what was dropped."""

    def truncate(text: str, budget_tokens: int) -> tuple[str, bool]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= budget_tokens:
            return text, False
        head = tokenizer.decode(ids[:budget_tokens])
        marker = TRUNCATION_MARKER.format(dropped=len(ids) - budget_tokens, total=len(ids))
        return head + marker, True

    return truncate


class ToolSet:
    """The tools of one protocol; executes calls and turns every failure into an observation."""

    def __init__(self, tools: list[Tool], truncate: Truncator = truncate_chars) -> None:
        self.tools = {t.name: t for t in tools}
        self.truncate = truncate

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self.tools.values()]

    async def execute(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        start = time.perf_counter()
        result = await self._execute(call, ctx)
        result.duration_s = time.perf_counter() - start
        return result

    async def _execute(self, call: ToolCall, ctx: ToolContext) -> ToolResult:
        tool_ = self.tools.get(call.function.name)
        if tool_ is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return _error(f"unknown tool {call.function.name!r}; available tools: {known}")
        try:
            arguments = call.function.parsed_arguments()
        except ValueError as exc:
            return _error(f"bad arguments for {tool_.name!r}: {exc}")
        try:
            value = await tool_.run(arguments, ctx)
        except TimeoutError:
            return _error(f"tool {tool_.name!r} timed out after {tool_.timeout_s:g} s")
        except ToolArgumentError as exc:
            return _error(f"bad arguments for {tool_.name!r}: {exc}")
        except Exception as exc:  # a crashed tool is an observation, never a dead episode
            return _error(f"tool {tool_.name!r} failed: {type(exc).__name__}: {exc}")
        result = value if isinstance(value, ToolResult) else ToolResult(content=str(value))
        result.content, cut = self.truncate(result.content, tool_.max_output_tokens)
        result.truncated = result.truncated or cut
        return result


def _error(message: str) -> ToolResult:
    return ToolResult(content=f"Error: {message}", error=message)
