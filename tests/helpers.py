"""Test models: a tiny model taught (in seconds, cached) to call a tool and then answer."""

from __future__ import annotations

from pathlib import Path

from longhorizon.core import Message
from longhorizon.models.checkpoints import build_once, home
from longhorizon.models.registry import resolve_model
from longhorizon.models.render import ChatRenderer
from longhorizon.tools.calculator import calculator

CALCULATOR = calculator.spec
CALL_TEXT = (
    '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n</tool_call>'
)
QUESTION = [Message(role="user", content="What is 2 + 3?")]
TOOL_TURN = [Message(role="assistant", content=CALL_TEXT), Message(role="tool", content="5")]
ANSWER_TEXT = "<answer>5</answer>"


def _train(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    renderer = ChatRenderer(tokenizer)
    examples = [
        (renderer.prompt_ids(QUESTION, [CALCULATOR]), renderer.encode(CALL_TEXT + "<|im_end|>")),
        (
            renderer.prompt_ids(QUESTION + TOOL_TURN, [CALCULATOR]),
            renderer.encode(ANSWER_TEXT + "<|im_end|>"),
        ),
    ]
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(120):
        loss = sum(
            model(
                input_ids=torch.tensor([prompt + target]),
                labels=torch.tensor([[-100] * len(prompt) + target]),
            ).loss
            for prompt, target in examples
        )
        optimizer.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def tool_calling_checkpoint() -> str:
    """Greedy decoding of this model calls calculator(2 + 3), then answers <answer>5</answer>."""
    return str(build_once(home() / "models" / "test-tool-caller-v2", _train))
