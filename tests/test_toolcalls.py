"""Tool-call parsing: Hermes and Qwen3-coder text, OpenAI tool_calls, and robustness."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest

from longhorizon.core.messages import FunctionCall, ToolCall, ToolSpec
from longhorizon.models.toolcalls import (
    ParsedOutput,
    parse_openai_tool_calls,
    parse_tool_calls,
    render_hermes_call,
)


def hermes(payload: str) -> str:
    return f"<tool_call>\n{payload}\n</tool_call>"


def qwen(function: str, **params: str) -> str:
    body = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in params.items())
    return f"<tool_call>\n<function={function}>\n{body}</function>\n</tool_call>"


def calls(parsed: ParsedOutput) -> list[tuple[str, dict[str, Any]]]:
    return [(c.function.name, c.function.parsed_arguments()) for c in parsed.tool_calls]


def expected_id(index: int, name: str, arguments: str) -> str:
    digest = hashlib.sha256(f"{name}\x00{arguments}".encode()).hexdigest()[:8]
    return f"call_{index}_{digest}"


# ------------------------------------------------------------------------------ Hermes


def test_hermes_several_calls_and_content_around_them() -> None:
    text = (
        "Let me look.\n"
        + hermes('{"name": "ls", "arguments": {"path": "/tmp"}}')
        + "\nand then\n"
        + hermes('{"name": "cat", "arguments": {"path": "/tmp/a b", "n": 3}}')
        + "\n"
    )
    parsed = parse_tool_calls(text, "hermes")
    assert parsed.errors == []
    assert parsed.content == "Let me look.\n\nand then"
    assert calls(parsed) == [("ls", {"path": "/tmp"}), ("cat", {"path": "/tmp/a b", "n": 3})]
    assert parsed.tool_calls[1].function.arguments == '{"path": "/tmp/a b", "n": 3}'
    assert [c.id for c in parsed.tool_calls] == [
        expected_id(0, "ls", '{"path": "/tmp"}'),
        expected_id(1, "cat", '{"path": "/tmp/a b", "n": 3}'),
    ]


def test_no_calls_keeps_text() -> None:
    assert parse_tool_calls("  just text \n") == ParsedOutput(
        content="just text", tool_calls=[], errors=[]
    )


def test_hermes_whitespace_arguments_string_missing_arguments_and_fence() -> None:
    text = (
        '<tool_call>{"name":"a","arguments":"{\\"x\\": [1, 2]}"}</tool_call>'
        '<tool_call>\n\n  {"name": "b"}  \n\n</tool_call>'
        '<tool_call>\n```json\n{"name": "c", "arguments": {"s": "é"}}\n```\n</tool_call>'
        '<tool_call>```{"name": "d", "arguments": null}```</tool_call>'
    )
    parsed = parse_tool_calls(text)
    assert parsed.errors == []
    assert parsed.content == ""
    assert calls(parsed) == [("a", {"x": [1, 2]}), ("b", {}), ("c", {"s": "é"}), ("d", {})]
    # ensure_ascii=False: non-ASCII text stays as written.
    assert parsed.tool_calls[2].function.arguments == '{"s": "é"}'


def test_ids_are_deterministic_and_positional() -> None:
    text = hermes('{"name": "f", "arguments": {}}') * 2
    first, second = parse_tool_calls(text), parse_tool_calls(text)
    assert first == second
    ids = [c.id for c in first.tool_calls]
    assert ids == [expected_id(0, "f", "{}"), expected_id(1, "f", "{}")]
    assert ids[0] != ids[1]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ('{"name": "x", "arguments": {', "invalid JSON in <tool_call>"),
        ("", "invalid JSON in <tool_call>"),
        ('{"name": "x", "arguments": {"v": NaN}}', "invalid JSON in <tool_call>"),
        ('["x", {}]', "tool call must be a JSON object, got array"),
        ('{"arguments": {}}', 'tool call is missing "name"'),
        ('{"name": 3, "arguments": {}}', '"name" must be a non-empty string, got number'),
        ('{"name": "", "arguments": {}}', '"name" must be a non-empty string, got string'),
        ('{"name": "x", "arguments": [1]}', '"arguments" must be a JSON object, got array'),
        ('{"name": "x", "arguments": "[1]"}', '"arguments" must be a JSON object, got array'),
        ('{"name": "x", "arguments": "{oops"}', '"arguments" string is not valid JSON'),
        ('{"name": "x", "arguments": {"v": 1e999}}', '"arguments" cannot be serialized'),
    ],
)
def test_hermes_errors_keep_valid_calls_beside_them(payload: str, fragment: str) -> None:
    bad = hermes(payload)
    text = "before " + hermes('{"name": "ok1"}') + bad + hermes('{"name": "ok2"}') + " after"
    parsed = parse_tool_calls(text, "hermes")
    assert calls(parsed) == [("ok1", {}), ("ok2", {})]
    assert [c.id[:7] for c in parsed.tool_calls] == ["call_0_", "call_1_"]
    assert parsed.content == "before  after"
    assert len(parsed.errors) == 1
    assert fragment in parsed.errors[0].message
    assert parsed.errors[0].raw == bad


def test_unclosed_block_at_end_is_a_truncation_error() -> None:
    text = "Sure.\n" + hermes('{"name": "ok"}') + '\n<tool_call>\n{"name": "cut", "argu'
    parsed = parse_tool_calls(text)
    assert calls(parsed) == [("ok", {})]
    assert parsed.content == "Sure."
    assert len(parsed.errors) == 1
    assert "unclosed <tool_call> at the end" in parsed.errors[0].message
    assert parsed.errors[0].raw == '<tool_call>\n{"name": "cut", "argu'


def test_unclosed_block_followed_by_another_block() -> None:
    text = '<tool_call>{"name": "lost"' + hermes('{"name": "ok"}')
    parsed = parse_tool_calls(text)
    assert calls(parsed) == [("ok", {})]
    assert len(parsed.errors) == 1
    assert "another <tool_call> starts before </tool_call>" in parsed.errors[0].message
    assert parsed.errors[0].raw == '<tool_call>{"name": "lost"'


def test_stray_close_tag() -> None:
    text = "oops</tool_call> then " + hermes('{"name": "ok"}') + "</tool_call>"
    parsed = parse_tool_calls(text)
    assert calls(parsed) == [("ok", {})]
    assert parsed.content == "oops then"
    assert [e.message for e in parsed.errors] == [
        "stray </tool_call> without an opening <tool_call>"
    ] * 2
    assert [e.raw for e in parsed.errors] == ["</tool_call>"] * 2


ROUND_TRIP_ARGUMENTS = [
    {},
    {"path": "a.py", "text": 'print("hi")\n  # é 日本\n', "n": [1, 2.5, None], "ok": True},
    {"nested": {"deep": [{"x": -1e-05}]}, "empty": "", "quote": "\\\"'"},
]


@pytest.mark.parametrize("arguments", ROUND_TRIP_ARGUMENTS)
def test_round_trip_render_then_parse(arguments: dict[str, Any]) -> None:
    original = FunctionCall(name="write_file", arguments=json.dumps(arguments, ensure_ascii=False))
    parsed = parse_tool_calls(render_hermes_call(ToolCall(id="orig", function=original)))
    assert parsed.errors == []
    assert parsed.content == ""
    assert [c.function for c in parsed.tool_calls] == [original]


def test_round_trip_normalizes_argument_text() -> None:
    loose = FunctionCall(name="say", arguments='{ "s":"\\u00e9" ,"n":1}')
    parsed = parse_tool_calls(render_hermes_call(ToolCall(id="x", function=loose)))
    assert parsed.tool_calls[0].function == FunctionCall(name="say", arguments='{"s": "é", "n": 1}')


def test_close_tag_inside_an_argument_is_reported_not_raised() -> None:
    # The Hermes format cannot carry a literal "</tool_call>" in a string: the block ends
    # there. The parser must report that as errors, not raise.
    call = ToolCall(id="x", function=FunctionCall(name="w", arguments='{"s": "a</tool_call>b"}'))
    parsed = parse_tool_calls(render_hermes_call(call))
    assert parsed.tool_calls == []
    assert [e.message.split(":")[0] for e in parsed.errors] == [
        "invalid JSON in <tool_call>",
        "stray </tool_call> without an opening <tool_call>",
    ]
    assert parsed.content == 'b"}}'


def test_render_hermes_call_exact_text() -> None:
    call = ToolCall(id="c", function=FunctionCall(name="ls", arguments='{"path":"/"}'))
    assert render_hermes_call(call) == (
        '<tool_call>\n{"name": "ls", "arguments": {"path": "/"}}\n</tool_call>'
    )
    with pytest.raises(ValueError):
        render_hermes_call(ToolCall(id="c", function=FunctionCall(name="ls", arguments="[")))


def test_unknown_tool_name_is_still_a_call() -> None:
    tools = [ToolSpec(name="known")]
    parsed = parse_tool_calls(hermes('{"name": "unknown", "arguments": {}}'), tools=tools)
    assert calls(parsed) == [("unknown", {})]
    assert parsed.errors == []


def test_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown tool call format"):
        parse_tool_calls("", "xml")  # type: ignore[arg-type]


# ------------------------------------------------------------------------- Qwen3-coder

WRITE_SCHEMA = ToolSpec(
    name="write",
    parameters={
        "type": "object",
        "properties": {
            "path": {"type": "string"},
            "count": {"type": "integer"},
            "ratio": {"type": "number"},
            "force": {"type": "boolean"},
            "meta": {"type": "object"},
            "tags": {"type": "array"},
            "code": {"type": "string"},
            "limit": {"type": ["integer", "null"]},
        },
    },
)


def test_qwen3_coder_without_schema_guesses_types() -> None:
    text = "Writing it.\n" + qwen(
        "write",
        path="/tmp/x",
        count="42",
        ratio="0.5",
        force="true",
        meta='{"a": [1]}',
        tags='["x", "y"]',
        quoted='"kept"',
        code="  def f():\n\n      return 1\n",
        nothing="null",
    )
    parsed = parse_tool_calls(text)
    assert parsed.errors == []
    assert parsed.content == "Writing it."
    assert calls(parsed) == [
        (
            "write",
            {
                "path": "/tmp/x",
                "count": 42,
                "ratio": 0.5,
                "force": True,
                "meta": {"a": [1]},
                "tags": ["x", "y"],
                "quoted": '"kept"',
                # exactly one framing newline is stripped on each side
                "code": "  def f():\n\n      return 1\n",
                "nothing": "null",
            },
        )
    ]


def test_qwen3_coder_with_schema_converts_by_type() -> None:
    text = qwen(
        "write",
        path="123",
        count="7",
        ratio="3",
        force="False",
        meta='{"k": "v"}',
        tags="[]",
        code="true",
        limit="null",
        extra="1.5",
    )
    parsed = parse_tool_calls(text, "qwen3_coder", tools=[WRITE_SCHEMA])
    assert parsed.errors == []
    assert calls(parsed) == [
        (
            "write",
            {
                "path": "123",
                "count": 7,
                "ratio": 3,
                "force": False,
                "meta": {"k": "v"},
                "tags": [],
                "code": "true",
                "limit": None,
                "extra": 1.5,
            },
        )
    ]


def test_qwen3_coder_value_not_fitting_schema_falls_back_to_guess() -> None:
    text = qwen("write", count="seven", force="yes", meta="[1]", ratio="1e999")
    parsed = parse_tool_calls(text, tools=[WRITE_SCHEMA])
    assert calls(parsed) == [
        ("write", {"count": "seven", "force": "yes", "meta": [1], "ratio": "1e999"})
    ]


def test_qwen3_coder_several_calls_and_no_parameters() -> None:
    text = (
        qwen("a", x="1")
        + "\nthinking\n"
        + "<tool_call>\n<function=b>\n</function>\n<function=c>\n</function>\n</tool_call>"
    )
    parsed = parse_tool_calls(text)
    assert parsed.errors == []
    assert parsed.content == "thinking"
    assert calls(parsed) == [("a", {"x": 1}), ("b", {}), ("c", {})]
    assert parsed.tool_calls[2].id == expected_id(2, "c", "{}")


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        (
            "<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n</tool_call>",
            "missing </function> for function 'f'",
        ),
        (
            "<tool_call>\n<function=f>\n<parameter=a>\n1\n</function>\n</tool_call>",
            "missing </parameter> for parameter 'a'",
        ),
        (
            "<tool_call>\n<function=f>\n<parameter=a>\n1\n<parameter=b>\n2\n</parameter>\n"
            "</function>\n</tool_call>",
            "missing </parameter> for parameter 'a'",
        ),
        ("<tool_call>\n<function=>\n</function>\n</tool_call>", "missing function name"),
        ("<tool_call>\n<function=f\n</function>\n</tool_call>", "malformed <function=NAME>"),
        (
            "<tool_call>\n<function=f>\n<parameter=>\n1\n</parameter>\n</function>\n</tool_call>",
            "missing parameter name",
        ),
        (
            qwen("f", a="1").replace("</function>", "<parameter=a>\n2\n</parameter>\n</function>"),
            "duplicate parameter 'a' in function 'f'",
        ),
        (
            "<tool_call>\n<function=f>\nhello\n</function>\n</tool_call>",
            "unexpected text in function 'f'",
        ),
        (
            '<tool_call>\n{"name": "f"}\n</tool_call>',
            "expected <function=NAME> in <tool_call>",
        ),
        ("<tool_call>\n\n</tool_call>", "empty <tool_call> block"),
    ],
)
def test_qwen3_coder_errors_keep_valid_calls(block: str, fragment: str) -> None:
    text = qwen("ok1", a="1") + "\n" + block + "\n" + qwen("ok2")
    parsed = parse_tool_calls(text, "qwen3_coder")
    assert calls(parsed) == [("ok1", {"a": 1}), ("ok2", {})]
    assert len(parsed.errors) == 1
    assert fragment in parsed.errors[0].message
    assert parsed.errors[0].raw == block


def test_qwen3_coder_truncated_generation() -> None:
    text = qwen("ok") + "\n<tool_call>\n<function=write>\n<parameter=code>\nprint("
    parsed = parse_tool_calls(text)
    assert calls(parsed) == [("ok", {})]
    assert "unclosed <tool_call> at the end" in parsed.errors[0].message


def test_auto_detection() -> None:
    # Hermes JSON that merely mentions "<function=" in an argument stays Hermes.
    mention = hermes('{"name": "echo", "arguments": {"s": "<function=x>"}}')
    assert calls(parse_tool_calls(mention)) == [("echo", {"s": "<function=x>"})]
    mixed = qwen("a") + hermes('{"name": "b"}')
    parsed = parse_tool_calls(mixed)
    assert calls(parsed) == [("a", {})]
    assert "expected <function=NAME>" in parsed.errors[0].message
    assert calls(parse_tool_calls(mixed, "hermes")) == [("b", {})]


# ----------------------------------------------------------------------------- OpenAI


def test_openai_tool_calls_conversion() -> None:
    raw: list[Any] = [
        {"id": "srv_1", "type": "function", "function": {"name": "a", "arguments": '{"x":1}'}},
        {"type": "function", "function": {"name": "b", "arguments": {"y": "é"}}},
        {"id": "srv_3", "type": "function", "function": {"name": "c", "arguments": "{bad"}},
        {"id": "srv_4", "function": {"name": "d", "arguments": ""}},
        {"id": "srv_5", "function": {"name": "e", "arguments": "[1]"}},
        {"id": "srv_6", "type": "function"},
        {"id": "srv_7", "type": "function", "function": {"arguments": "{}"}},
        {"id": "srv_8", "type": "code", "function": {"name": "f"}},
        "not a dict",
    ]
    calls_, errors = parse_openai_tool_calls(raw)
    assert [(c.id, c.function.name, c.function.arguments) for c in calls_] == [
        ("srv_1", "a", '{"x": 1}'),
        (expected_id(1, "b", '{"y": "é"}'), "b", '{"y": "é"}'),
        ("srv_4", "d", "{}"),
    ]
    assert [e.message for e in errors] == [
        '"arguments" string is not valid JSON: Expecting property name enclosed in double '
        "quotes at line 1 column 2",
        '"arguments" must be a JSON object, got array',
        'tool call is missing its "function" object',
        'tool call "name" must be a non-empty string, got null',
        "unsupported tool call type 'code'",
        "tool call must be an object, got str",
    ]
    assert json.loads(errors[0].raw)["id"] == "srv_3"
    assert errors[-1].raw == '"not a dict"'
    assert parse_openai_tool_calls(None) == ([], [])


# ------------------------------------------------------------------------- robustness

VALID_OUTPUTS = [
    "Plan: list files.\n" + hermes('{"name": "ls", "arguments": {"path": "/", "all": true}}'),
    hermes('{"name": "a", "arguments": "{\\"x\\": [1, {\\"y\\": null}]}"}')
    + hermes('{"name":"b"}'),
    "ok " + qwen("write", path="/tmp/f", count="3", meta='{"k": [1, 2]}', code="x = 1\n"),
    qwen("a", x="1") + "\n" + qwen("b", s="é"),
]
ALPHABET = [*'<>/{}[]":,=\n\\ e0', "<tool_call>", "</tool_call>", "<function=", "\ud800"]


def mutate(text: str, rng: random.Random) -> str:
    """One to four random edits, by characters or by bytes (decoded with surrogateescape)."""
    if rng.random() < 0.3:
        data = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(rng.randint(1, 4)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return data.decode("utf-8", "surrogateescape")
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(chars) + 1)
        op = rng.randrange(3)
        if op == 0 and i < len(chars):
            del chars[i]
        elif op == 1:
            chars.insert(i, rng.choice(ALPHABET))
        else:
            chars.insert(i, chr(rng.randrange(0x110000)))
    return "".join(chars)


def test_random_mutations_never_raise() -> None:
    rng = random.Random(0)
    tools = [WRITE_SCHEMA]
    for i in range(400):
        text = mutate(rng.choice(VALID_OUTPUTS), rng)
        # Also truncate some, as a generation cut at max_tokens would be.
        if i % 5 == 0:
            text = text[: rng.randrange(len(text) + 1)]
        for fmt in ("auto", "hermes", "qwen3_coder"):
            parsed = parse_tool_calls(text, fmt, tools=tools if i % 2 else None)
            for call in parsed.tool_calls:
                assert isinstance(call.function.parsed_arguments(), dict)
    deep = hermes('{"name": "x", "arguments": ' + "[" * 100_000 + "}")
    assert "invalid JSON" in parse_tool_calls(deep).errors[0].message
    huge = hermes('{"name": "x", "arguments": {"n": ' + "9" * 5000 + "}}")
    assert "invalid JSON" in parse_tool_calls(huge).errors[0].message
