"""Rendering: our template equals the tokenizer's own where both apply; tools are rendered."""

from __future__ import annotations

import json

from transformers import AutoTokenizer

from longhorizon.core import FunctionCall, Message, ToolCall
from longhorizon.models.checkpoints import smollm2_gguf_path
from longhorizon.models.render import ChatRenderer
from longhorizon.models.toolcalls import parse_tool_calls
from tests.helpers import CALCULATOR

CONVERSATIONS = [
    [Message(role="user", content="hi")],
    [
        Message(role="system", content="Be brief."),
        Message(role="user", content="hi"),
        Message(role="assistant", content="hello"),
        Message(role="user", content="bye"),
    ],
]


def test_matches_smollm2_native_template_without_tools(smollm2_path: str) -> None:
    gguf = smollm2_gguf_path()
    native = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    ours = ChatRenderer(AutoTokenizer.from_pretrained(smollm2_path))
    assert "tools" not in native.chat_template
    for messages in CONVERSATIONS:
        dicts = [m.to_openai() for m in messages]
        expected = native.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
        assert ours.text(messages, add_generation_prompt=True) == expected
        assert ours.prompt_ids(messages) == native(expected, add_special_tokens=False)["input_ids"]


def test_tools_and_structured_tool_calls_render(tiny_llama_path: str) -> None:
    renderer = ChatRenderer(AutoTokenizer.from_pretrained(tiny_llama_path))
    call = ToolCall(
        id="c1", function=FunctionCall(name="calculator", arguments='{"expression": "1+1"}')
    )
    messages = [
        Message(role="user", content="1+1?"),
        Message(role="assistant", content=None, tool_calls=[call]),  # as an API returns it
        Message(role="tool", content="2", tool_call_id="c1"),
    ]
    text = renderer.text(messages, [CALCULATOR], add_generation_prompt=True)
    assert json.dumps(CALCULATOR.to_openai()) in text
    assert text.endswith("<|im_start|>tool\n2<|im_end|>\n<|im_start|>assistant\n")
    assistant = text.split("<|im_start|>assistant\n")[1].split("<|im_end|>")[0]
    parsed = parse_tool_calls(assistant, "hermes")
    assert parsed.tool_calls[0].function.name == "calculator"
    assert parsed.tool_calls[0].function.parsed_arguments() == {"expression": "1+1"}
