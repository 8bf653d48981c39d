"""The token alignment check: a trajectory's token records agree with its messages.

Training trusts these records blindly (nothing is re-tokenized), so every producer of
trajectories (harness, synthesis, evaluation) can assert them with `check_alignment`.
"""

from __future__ import annotations

from longhorizon.core.messages import ToolSpec
from longhorizon.core.tokens import call_prompt, call_sequence, leaf_calls
from longhorizon.core.trajectory import Trajectory
from longhorizon.models.render import ChatRenderer


def alignment_problems(traj: Trajectory, renderer: ChatRenderer) -> list[str]:
    """Everything wrong with `traj`'s token records (empty when they are aligned)."""
    problems: list[str] = []
    for i, call in enumerate(traj.calls):
        prompt = call_prompt(traj.calls, i)
        if not call.new_prompt_ids and call.parent is None:
            problems.append(f"call {i}: empty prompt")
        if call.completion_logprobs is not None and len(call.completion_logprobs) != len(
            call.completion_ids
        ):
            problems.append(
                f"call {i}: {len(call.completion_logprobs)} logprobs for "
                f"{len(call.completion_ids)} tokens"
            )
        if not renderer.decode(prompt.input_ids).endswith(renderer.generation_prompt):
            problems.append(f"call {i}: prompt does not end with the generation prompt")
    for leaf in leaf_calls(traj.calls):
        problems += _leaf_problems(traj, leaf, renderer)
    if not _has_restarts(traj) and traj.calls and not problems:
        problems += _render_problems(traj, renderer)
    return problems


def _chain(traj: Trajectory, index: int) -> list[int]:
    chain = [index]
    while traj.calls[chain[-1]].parent is not None:
        chain.append(traj.calls[chain[-1]].parent)  # type: ignore[arg-type]
    return chain[::-1]


def _leaf_problems(traj: Trajectory, leaf: int, renderer: ChatRenderer) -> list[str]:
    seq = call_sequence(traj.calls, leaf)
    if len(seq.input_ids) != len(seq.loss_mask) or set(seq.loss_mask) - {0, 1}:
        return [f"leaf {leaf}: mask is not a 0/1 list of the sequence's length"]
    masked = [t for t, m in zip(seq.input_ids, seq.loss_mask, strict=True) if m]
    generated = [t for i in _chain(traj, leaf) for t in traj.calls[i].completion_ids]
    if masked != generated:
        return [f"leaf {leaf}: masked tokens are not exactly the generated tokens"]
    return []


def _has_restarts(traj: Trajectory) -> bool:
    return sum(c.parent is None for c in traj.calls) > 1 or any(c.discarded for c in traj.calls)


def _render_problems(traj: Trajectory, renderer: ChatRenderer) -> list[str]:
    """A single-context episode decodes to exactly the template's rendering of its messages."""
    tools = [ToolSpec(**t["function"]) for t in traj.tools] or None
    (seq,) = traj.token_sequences()
    decoded = renderer.decode(seq.input_ids)
    last = traj.messages[-1]
    add_prompt = last.role != "assistant"
    rendered = renderer.text(traj.messages, tools, add_generation_prompt=add_prompt)
    if last.role == "assistant":
        tail = renderer.assistant_tail(traj.messages, tools)
        decoded_end = decoded + tail[len(_eot_text(traj, renderer)) :]
    else:
        decoded_end = decoded
    if decoded_end != rendered:
        return ["decoded tokens differ from the chat template's rendering of the messages"]
    return []


def _eot_text(traj: Trajectory, renderer: ChatRenderer) -> str:
    last = traj.calls[-1].completion_ids
    special = set(renderer.tokenizer.all_special_ids)
    return renderer.decode(last[-1:]) if last and last[-1] in special else ""


def check_alignment(traj: Trajectory, renderer: ChatRenderer) -> None:
    """Raise ValueError listing every alignment problem of `traj`."""
    problems = alignment_problems(traj, renderer)
    if problems:
        raise ValueError(f"trajectory {traj.id} is misaligned: " + "; ".join(problems))
