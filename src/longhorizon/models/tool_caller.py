"""`tiny-tool-caller`: the tiny Llama taught (in seconds, once) to use the calculator tool.

Greedy decoding calls calculator("2 + 3") for "What is 2 + 3?", then answers
<answer>5</answer> once it sees the result. It makes tool-using episodes real and fast on
CPU: for tests, benchmarks of the harness, and the vLLM path.
"""

from __future__ import annotations

from pathlib import Path

from longhorizon.core.messages import Message, ToolSpec
from longhorizon.models.checkpoints import build_once, home
from longhorizon.models.render import ChatRenderer
from longhorizon.models.tiny import TinyModelConfig, tiny_checkpoint

QUESTION = "What is 2 + 3?"
CALL_TEXT = (
    '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n</tool_call>'
)
ANSWER_TEXT = "<answer>5</answer>"
TRAIN_STEPS = 120
# The calculator's schema as the checkpoint was taught it: the model is data trained on this
# exact prompt, so it is pinned here (models sit below tools); a test checks the live
# `tools.calculator` spec still equals it, so a drift says "bump the checkpoint version".
CALCULATOR_SPEC = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression with + - * / ** and parentheses.",
    parameters={
        "type": "object",
        "properties": {
            "expression": {"type": "string", "description": "the expression, e.g. (3 + 4) * 5"}
        },
        "required": ["expression"],
    },
)


def _examples(renderer: ChatRenderer) -> list[tuple[list[int], list[int]]]:
    tools = [CALCULATOR_SPEC]
    question = [Message(role="user", content=QUESTION)]
    tool_turn = [Message(role="assistant", content=CALL_TEXT), Message(role="tool", content="5")]
    eot = renderer.tokenizer.eos_token
    return [
        (renderer.prompt_ids(question, tools), renderer.encode(CALL_TEXT + eot)),
        (renderer.prompt_ids(question + tool_turn, tools), renderer.encode(ANSWER_TEXT + eot)),
    ]


def _train(out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_checkpoint(TinyModelConfig())
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    examples = _examples(ChatRenderer(tokenizer))
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(TRAIN_STEPS):
        loss = sum(
            model(
                input_ids=torch.tensor([prompt + target]),
                labels=torch.tensor([[-100] * len(prompt) + target]),
            ).loss
            for prompt, target in examples
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def tool_caller_checkpoint() -> Path:
    return build_once(home() / "models" / "tiny-tool-caller-v2", _train)
