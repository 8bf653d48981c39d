"""Parse tool calls out of generated text, and convert OpenAI-API tool calls.

Two text formats are understood:

* Hermes / Qwen (what `chatml_tools.jinja` teaches): one JSON object per block,
  ``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>``.
* Qwen3-coder XML: ``<tool_call>\\n<function=NAME>\\n<parameter=ARG>\\nVALUE\\n</parameter>
  \\n</function>\\n</tool_call>``, with values converted by the tool's JSON-schema types.

Malformed output never raises: every broken block becomes a `ToolCallError(message, raw)`
beside the calls that did parse, because one bad generation must cost the policy an error
observation, not the whole episode.

Calls to a name that is not among `tools` are still returned as `ToolCall`s, not errors:
the harness owns the tool registry and answers an unknown tool with an error observation
the model can learn from; `tools` is only used here to type Qwen3-coder parameter values.

Tool call ids are deterministic (`call_<index>_<8 hex of sha256(name, arguments)>`) so that
re-parsing the same text, e.g. when a trajectory is replayed, yields identical ids.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from longhorizon.core.messages import FunctionCall, ToolCall, ToolSpec
from longhorizon.models.types import ToolCallError

ToolCallFormat = Literal["hermes", "qwen3_coder", "auto"]

OPEN_TAG = "<tool_call>"
CLOSE_TAG = "</tool_call>"
FUNCTION_OPEN = "<function="
FUNCTION_CLOSE = "</function>"
PARAMETER_OPEN = "<parameter="
PARAMETER_CLOSE = "</parameter>"

# An optional ```json fence some models wrap around the JSON inside a <tool_call> block.
_FENCE_RE = re.compile(r"^```[A-Za-z0-9_+-]*[ \t]*\n?(?P<body>.*?)\n?[ \t]*(?:```)?$", re.DOTALL)
# JSON-schema "integer" and "number" literals; stricter than int()/float(), which accept
# "1_000", "+3", "inf" and surrounding junk that a schema would not.
_INTEGER_RE = re.compile(r"-?(?:0|[1-9]\d*)")
_NUMBER_RE = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")


class ParsedOutput(BaseModel):
    """An assistant generation split into its text, its tool calls and its broken calls."""

    content: str
    tool_calls: list[ToolCall] = Field(default_factory=list)
    errors: list[ToolCallError] = Field(default_factory=list)


@dataclass(frozen=True)
class _Block:
    """The inside of one closed <tool_call> block, and the whole block for error reports."""

    body: str
    raw: str


@dataclass(frozen=True)
class _Call:
    """A parsed call before it gets its id (ids depend on the call's final position)."""

    name: str
    arguments: str


class _Invalid(Exception):
    """Internal signal for a malformed call; always caught and turned into a ToolCallError."""


class _NoMatch:
    """Sentinel for "this value does not convert to that type" (None is a valid value)."""


_NO_MATCH = _NoMatch()

# --------------------------------------------------------------------------- public API


def parse_tool_calls(
    text: str, fmt: ToolCallFormat = "auto", tools: list[ToolSpec] | None = None
) -> ParsedOutput:
    """Split `text` into content, tool calls and parse errors; never raises on bad text.

    `tools` only supplies JSON-schema types for Qwen3-coder parameter values; a call to a
    tool that is not listed is returned as a normal ToolCall (the harness reports it).
    """
    if fmt not in ("hermes", "qwen3_coder", "auto"):
        raise ValueError(f"unknown tool call format: {fmt!r}")
    content, items = _split_blocks(text)
    if fmt == "auto":
        fmt = "qwen3_coder" if _looks_like_qwen3_coder(items) else "hermes"
    schemas = _parameter_schemas(tools)
    results: list[_Call | ToolCallError] = []
    for item in items:
        if isinstance(item, ToolCallError):
            results.append(item)
        elif fmt == "hermes":
            results.append(_parse_hermes_block(item))
        else:
            results.extend(_parse_qwen3_coder_block(item, schemas))
    return _assemble(content, results)


def parse_openai_tool_calls(
    raw: list[dict[str, Any]] | None,
) -> tuple[list[ToolCall], list[ToolCallError]]:
    """Convert an OpenAI-API message's `tool_calls`; bad entries become errors.

    Arguments may be a JSON object string or an already-decoded dict; either way they are
    re-serialized in the same form the text parsers produce. A server-given id is kept
    (the server may refer to it later); a missing one gets a deterministic id.
    """
    calls: list[ToolCall] = []
    errors: list[ToolCallError] = []
    for item in raw or []:
        try:
            call = _convert_openai_call(item)
        except _Invalid as exc:
            errors.append(ToolCallError(message=str(exc), raw=_describe(item)))
            continue
        given_id = item.get("id")
        call_id = given_id if isinstance(given_id, str) and given_id else None
        calls.append(_to_tool_call(call, len(calls), call_id))
    return calls, errors


def render_hermes_call(call: ToolCall) -> str:
    """The Hermes text for `call`, as the chat template renders it; inverse of the parser.

    Raises ValueError when the call's arguments are not a JSON object: rendering is for
    scripted policies and templates, where such a call is a programming error.
    """
    payload = {"name": call.function.name, "arguments": call.function.parsed_arguments()}
    return f"{OPEN_TAG}\n{json.dumps(payload, ensure_ascii=False)}\n{CLOSE_TAG}"


# ----------------------------------------------------------------- splitting into blocks


def _split_blocks(text: str) -> tuple[str, list[_Block | ToolCallError]]:
    """Cut out every <tool_call> block; structural problems become errors in text order."""
    content: list[str] = []
    items: list[_Block | ToolCallError] = []
    pos: int | None = 0
    while pos is not None:
        start = text.find(OPEN_TAG, pos)
        stray = text.find(CLOSE_TAG, pos)
        if stray != -1 and (start == -1 or stray < start):
            content.append(text[pos:stray])
            items.append(_error("stray </tool_call> without an opening <tool_call>", CLOSE_TAG))
            pos = stray + len(CLOSE_TAG)
            continue
        if start == -1:
            content.append(text[pos:])
            break
        content.append(text[pos:start])
        pos = _take_block(text, start, items)
    return "".join(content).strip(), items


def _take_block(text: str, start: int, items: list[_Block | ToolCallError]) -> int | None:
    """Append the block opening at `start` (or its error) to `items`.

    Returns where scanning goes on, or None when the block ran to the end of the text.
    """
    body_start = start + len(OPEN_TAG)
    end = text.find(CLOSE_TAG, body_start)
    reopened = text.find(OPEN_TAG, body_start)
    if reopened != -1 and (end == -1 or reopened < end):
        # A second <tool_call> before any close: the first one was never finished. Keep
        # going from the second so a later, well-formed call is not lost.
        message = "unclosed <tool_call>: another <tool_call> starts before </tool_call>"
        items.append(_error(message, text[start:reopened]))
        return reopened
    if end == -1:
        message = "unclosed <tool_call> at the end of the output (truncated generation?)"
        items.append(_error(message, text[start:]))
        return None
    items.append(_Block(body=text[body_start:end], raw=text[start : end + len(CLOSE_TAG)]))
    return end + len(CLOSE_TAG)


def _looks_like_qwen3_coder(items: list[_Block | ToolCallError]) -> bool:
    """True when a block body starts with <function=.

    Checking the start rather than "contains" keeps a Hermes call whose JSON arguments
    merely mention "<function=" (say, code being written to a file) in the Hermes parser.
    Unclosed blocks count too, so a truncated Qwen3-coder call does not flip the format.
    """
    for item in items:
        body = item.body if isinstance(item, _Block) else item.raw.removeprefix(OPEN_TAG)
        if body.lstrip().startswith(FUNCTION_OPEN):
            return True
    return False


# ------------------------------------------------------------------------------ Hermes


def _parse_hermes_block(block: _Block) -> _Call | ToolCallError:
    try:
        payload = _load_json(_strip_fence(block.body.strip()), "invalid JSON in <tool_call>")
        return _call_from_payload(payload)
    except _Invalid as exc:
        return _error(str(exc), block.raw)


def _strip_fence(body: str) -> str:
    """Remove a ```json ... ``` fence around the JSON, which some models add."""
    if not body.startswith("```"):
        return body
    match = _FENCE_RE.match(body)
    return match.group("body").strip() if match else body


def _call_from_payload(payload: Any) -> _Call:
    if not isinstance(payload, dict):
        raise _Invalid(f"tool call must be a JSON object, got {_json_type(payload)}")
    if "name" not in payload:
        raise _Invalid('tool call is missing "name"')
    name = payload["name"]
    if not isinstance(name, str) or not name:
        raise _Invalid(f'tool call "name" must be a non-empty string, got {_json_type(name)}')
    return _Call(name=name, arguments=_dump_arguments(_decode_arguments(payload.get("arguments"))))


def _decode_arguments(arguments: Any) -> dict[str, Any]:
    """Arguments as a dict: an object, a JSON string holding one, or absent/null for {}."""
    # Models write "arguments": null (or leave it out) for tools without parameters.
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        if not arguments.strip():
            return {}
        arguments = _load_json(arguments, '"arguments" string is not valid JSON')
    if not isinstance(arguments, dict):
        raise _Invalid(f'"arguments" must be a JSON object, got {_json_type(arguments)}')
    return arguments


# ------------------------------------------------------------------------- Qwen3-coder


def _parse_qwen3_coder_block(
    block: _Block, schemas: dict[str, dict[str, Any]]
) -> list[_Call | ToolCallError]:
    """All <function=...> calls in one block; parsing stops at the first malformed one."""
    body = block.body
    results: list[_Call | ToolCallError] = []
    pos = _skip_space(body, 0)
    if pos == len(body):
        return [_error("empty <tool_call> block", block.raw)]
    while pos < len(body):
        try:
            call, pos = _parse_function(body, pos, schemas)
        except _Invalid as exc:
            results.append(_error(str(exc), block.raw))
            break
        results.append(call)
        pos = _skip_space(body, pos)
    return results


def _parse_function(body: str, pos: int, schemas: dict[str, dict[str, Any]]) -> tuple[_Call, int]:
    """Parse `<function=NAME> <parameter=...>... </function>` at `pos`; return it and its end."""
    if not body.startswith(FUNCTION_OPEN, pos):
        raise _Invalid(f"expected <function=NAME> in <tool_call>, got {body[pos : pos + 40]!r}")
    name, pos = _tag_name(body, pos + len(FUNCTION_OPEN), "function")
    properties = schemas.get(name, {})
    arguments: dict[str, Any] = {}
    while True:
        pos = _skip_space(body, pos)
        if body.startswith(FUNCTION_CLOSE, pos):
            return _Call(name=name, arguments=_dump_arguments(arguments)), pos + len(FUNCTION_CLOSE)
        if pos >= len(body):
            raise _Invalid(f"missing </function> for function {name!r}")
        if not body.startswith(PARAMETER_OPEN, pos):
            raise _Invalid(f"unexpected text in function {name!r}: {body[pos : pos + 40]!r}")
        key, value, pos = _parse_parameter(body, pos, name)
        if key in arguments:
            raise _Invalid(f"duplicate parameter {key!r} in function {name!r}")
        arguments[key] = _convert_value(value, properties.get(key))


def _parse_parameter(body: str, pos: int, function: str) -> tuple[str, str, int]:
    """Parse `<parameter=KEY>VALUE</parameter>` at `pos`; return key, raw value and its end."""
    key, value_start = _tag_name(body, pos + len(PARAMETER_OPEN), "parameter")
    close = body.find(PARAMETER_CLOSE, value_start)
    value = body[value_start:] if close == -1 else body[value_start:close]
    # A <parameter= inside the value means this parameter's close tag was left out and the
    # next parameter's close was found instead; silently merging them would corrupt both.
    if close == -1 or PARAMETER_OPEN in value:
        raise _Invalid(f"missing </parameter> for parameter {key!r} in function {function!r}")
    return key, _strip_one_newline(value), close + len(PARAMETER_CLOSE)


def _tag_name(body: str, start: int, kind: str) -> tuple[str, int]:
    """The NAME in `<kind=NAME>` (from just after '='); return it and the index after '>'."""
    end = body.find(">", start)
    if end == -1 or "\n" in body[start:end] or "<" in body[start:end]:
        raise _Invalid(f"malformed <{kind}=NAME> tag: {body[start - len(kind) - 2 : start + 40]!r}")
    name = body[start:end].strip()
    if not name:
        raise _Invalid(f"missing {kind} name in <{kind}=>")
    return name, end + 1


def _strip_one_newline(value: str) -> str:
    """The template puts the value on its own lines; strip exactly that framing, no more,
    so indentation and blank lines that are part of the value survive."""
    value = value.removeprefix("\n")
    return value.removesuffix("\n")


def _convert_value(value: str, schema: Any) -> Any:
    """Type a parameter by its JSON-schema type(s) when known, else by guessing."""
    declared = schema.get("type") if isinstance(schema, dict) else None
    types = declared if isinstance(declared, list) else [declared] if declared else []
    for type_name in types:
        converted = _convert_as(value, type_name)
        if converted is not _NO_MATCH:
            return converted
    # Unknown parameter, or a value that does not fit its declared type: guess, and leave it
    # to the tool's own argument validation to explain any mismatch to the model.
    return _guess_value(value)


def _convert_as(value: str, type_name: Any) -> Any:
    """`value` as JSON-schema type `type_name`, or _NO_MATCH."""
    text = value.strip()
    if type_name == "string":
        return value
    if type_name == "integer" and _INTEGER_RE.fullmatch(text) and len(text) < 1000:
        return int(text)
    if type_name == "number" and _NUMBER_RE.fullmatch(text) and len(text) < 1000:
        number = json.loads(text)
        return number if math.isfinite(number) else _NO_MATCH
    if type_name == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if type_name == "null" and text == "null":
        return None
    if type_name in ("object", "array"):
        try:
            decoded = _load_json(text, "")
        except _Invalid:
            return _NO_MATCH
        expected = dict if type_name == "object" else list
        return decoded if isinstance(decoded, expected) else _NO_MATCH
    return _NO_MATCH


def _guess_value(value: str) -> Any:
    """A number, bool, object or array when the text is one in JSON; otherwise the text."""
    try:
        decoded = _load_json(value, "")
    except _Invalid:
        return value
    if isinstance(decoded, float) and not math.isfinite(decoded):
        return value
    # JSON strings and null stay raw text: a string parameter must not lose its quotes.
    return decoded if isinstance(decoded, dict | list | bool | int | float) else value


def _parameter_schemas(tools: list[ToolSpec] | None) -> dict[str, dict[str, Any]]:
    """tool name -> {parameter name -> parameter schema}, tolerating odd schemas."""
    schemas: dict[str, dict[str, Any]] = {}
    for tool in tools or []:
        properties = tool.parameters.get("properties")
        schemas[tool.name] = properties if isinstance(properties, dict) else {}
    return schemas


# ----------------------------------------------------------------------------- OpenAI


def _convert_openai_call(item: Any) -> _Call:
    if not isinstance(item, dict):
        raise _Invalid(f"tool call must be an object, got {type(item).__name__}")
    kind = item.get("type") or "function"  # some servers send "type": null
    if kind != "function":
        raise _Invalid(f"unsupported tool call type {kind!r}")
    function = item.get("function")
    if not isinstance(function, dict):
        raise _Invalid('tool call is missing its "function" object')
    name = function.get("name")
    if not isinstance(name, str) or not name:
        raise _Invalid(f'tool call "name" must be a non-empty string, got {_json_type(name)}')
    arguments = _decode_arguments(function.get("arguments"))
    return _Call(name=name, arguments=_dump_arguments(arguments))


def _describe(item: Any) -> str:
    """The offending entry as text for the error's `raw`, whatever it contains."""
    try:
        return json.dumps(item, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        return repr(item)


# ---------------------------------------------------------------------------- helpers


def _load_json(text: str, message: str) -> Any:
    """json.loads that reports every failure as _Invalid.

    NaN/Infinity literals are rejected (they are not JSON and OpenAI servers refuse them);
    ValueError also covers integers past Python's digit limit, and RecursionError very deep
    nesting, both of which a degenerate generation can produce.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise _Invalid(f"{message}: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f"{message}: {exc}") from exc


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _dump_arguments(arguments: dict[str, Any]) -> str:
    """The canonical arguments string; fails on values JSON cannot carry (1e999 -> inf)."""
    try:
        return json.dumps(arguments, ensure_ascii=False, allow_nan=False)
    except (ValueError, RecursionError) as exc:
        raise _Invalid(f'"arguments" cannot be serialized as JSON: {exc}') from exc


def _call_id(index: int, call: _Call) -> str:
    # surrogatepass: decoded text may hold lone surrogates (e.g. a "\ud800" JSON escape),
    # which plain UTF-8 encoding would refuse.
    key = f"{call.name}\x00{call.arguments}".encode("utf-8", "surrogatepass")
    return f"call_{index}_{hashlib.sha256(key).hexdigest()[:8]}"


def _to_tool_call(call: _Call, index: int, call_id: str | None = None) -> ToolCall:
    return ToolCall(
        id=call_id or _call_id(index, call),
        function=FunctionCall(name=call.name, arguments=call.arguments),
    )


def _assemble(content: str, results: list[_Call | ToolCallError]) -> ParsedOutput:
    """Give calls their ids in text order and separate them from the errors."""
    calls: list[ToolCall] = []
    errors: list[ToolCallError] = []
    for result in results:
        if isinstance(result, ToolCallError):
            errors.append(result)
        else:
            calls.append(_to_tool_call(result, len(calls)))
    return ParsedOutput(content=content, tool_calls=calls, errors=errors)


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for error messages the model will read."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _error(message: str, raw: str) -> ToolCallError:
    return ToolCallError(message=message, raw=raw)
