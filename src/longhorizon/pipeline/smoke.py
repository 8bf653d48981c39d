"""The foundation job: a model answers arithmetic tasks with a calculator tool, token-exact.

It exercises everything the later stages rely on (backend, chat template with tools, tool-call
parsing, token-in-token-out records, the trajectory store and its Parquet export) on real
models. The full recipe (synthesis -> SFT -> teachers -> OPD -> eval) replaces it as the
default of `longhorizon run` once those stages land.
"""

from __future__ import annotations

import ast
import asyncio
import operator
import time
from pathlib import Path

from pydantic import BaseModel

from longhorizon.core import (
    Message,
    RunProvenance,
    SamplingParams,
    Status,
    Step,
    Task,
    ToolSpec,
    Trajectory,
    TrajectoryStore,
    Verdict,
)
from longhorizon.core.provenance import utc_now
from longhorizon.models.conversation import TokenConversation
from longhorizon.models.hf import HFBackend

CALCULATOR = ToolSpec(
    name="calculator",
    description="Evaluate an arithmetic expression with + - * / ** and parentheses.",
    parameters={
        "type": "object",
        "properties": {"expression": {"type": "string", "description": "e.g. (3 + 4) * 5"}},
        "required": ["expression"],
    },
)
SYSTEM = (
    "You solve arithmetic problems. Use the calculator tool for every computation, then give "
    "the final number inside <answer></answer>."
)
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
}


class SmokeConfig(BaseModel):
    model: str = "smollm2-135m"
    out: Path = Path("runs/default")
    max_turns: int = 3
    max_tokens: int = 96
    seed: int = 0


def calculate(expression: str) -> str:
    """Evaluate arithmetic safely (no names, no calls); errors come back as text."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.operand))
        raise ValueError(f"unsupported expression: {ast.dump(node)[:60]}")

    try:
        value = walk(ast.parse(expression, mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"error: {exc}"
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def builtin_tasks() -> list[Task]:
    problems = [
        ("17 * 23", "391"),
        ("(120 - 45) / 3", "25"),
        ("2 ** 10 + 7", "1031"),
        ("9 * 9 * 9", "729"),
    ]
    return [
        Task(id=f"arith-{i}", domain="arithmetic", instruction=f"What is {q}?", answer=a)
        for i, (q, a) in enumerate(problems)
    ]


def extract_answer(text: str | None) -> str | None:
    if not text or "<answer>" not in text:
        return None
    return text.split("<answer>", 1)[1].split("</answer>", 1)[0].strip()


async def run_episode(backend: HFBackend, task: Task, cfg: SmokeConfig) -> Trajectory:
    params = SamplingParams(temperature=0.0, max_tokens=cfg.max_tokens)
    convo = TokenConversation(
        backend.renderer,
        [Message(role="system", content=SYSTEM), Message(role="user", content=task.instruction)],
        [CALCULATOR],
    )
    steps: list[Step] = []
    started = utc_now()
    for _ in range(cfg.max_turns):
        message, errors = convo.record(await backend.generate(convo.prompt_ids(), params))
        observations = [
            _tool_message(call, steps, len(convo.calls) - 1) for call in message.tool_calls or []
        ]
        observations += [Message(role="tool", content=f"error: {e.message}") for e in errors]
        if not observations:
            break
        convo.extend(observations)
    answer = (
        extract_answer(convo.messages[-1].content)
        if convo.messages[-1].role == "assistant"
        else None
    )
    status = Status.COMPLETED if answer is not None else Status.TRUNCATED
    return Trajectory(
        id=f"{task.id}-s{cfg.seed}",
        task_id=task.id,
        domain=task.domain,
        messages=convo.messages,
        tools=[CALCULATOR.to_openai()],
        steps=steps,
        final_answer=answer,
        verdicts=[Verdict(verifier="exact_match", passed=answer == task.answer)],
        status=status,
        status_reason=None if answer is not None else "no <answer> within the turn budget",
        calls=convo.calls,
        timings={"started_at": started, "ended_at": utc_now()},
        provenance=RunProvenance(
            model=backend.model_id, backend=backend.name, sampling=params, seed=cfg.seed
        ),
    )


def _tool_message(call, steps: list[Step], call_index: int) -> Message:  # type: ignore[no-untyped-def]
    try:
        result = calculate(str(call.function.parsed_arguments().get("expression", "")))
    except ValueError as exc:
        result = f"error: {exc}"
    steps.append(Step(index=len(steps), call_index=call_index, action=call, observation=result))
    return Message(role="tool", content=result, tool_call_id=call.id)


async def run_smoke(backend: HFBackend, cfg: SmokeConfig) -> list[Trajectory]:
    store = TrajectoryStore(cfg.out / "trajectories")
    todo = [t for t in builtin_tasks() if f"{t.id}-s{cfg.seed}" not in store]
    start = time.perf_counter()
    results = await asyncio.gather(*(run_episode(backend, t, cfg) for t in todo))
    for traj in results:
        store.add(traj)
    store.close()
    store.to_parquet(cfg.out / "trajectories.parquet")
    elapsed = time.perf_counter() - start
    done = list(store)
    for traj in done:
        traj.metadata.setdefault("elapsed_s", elapsed)
    return done
