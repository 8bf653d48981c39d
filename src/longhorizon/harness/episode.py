"""One episode: render, generate, parse tool calls, execute them, observe, repeat; then verify.

Budgets: T_max turns, L_resp tokens per response, L_ctx tokens of context. At the turn limit
(or when the context strategy cannot make room) the last turn is rolled back and a final
answer is forced with an explicit prompt. Statuses: COMPLETED (an answer), TRUNCATED (a budget
ended the episode; a valid prefix), ABORTED (the model backend failed; retry it), FAILED (the
model stopped without an answer, or the harness itself hit a bug).
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from longhorizon.core import (
    FunctionCall,
    Message,
    RunProvenance,
    SamplingParams,
    Status,
    Step,
    Task,
    Timings,
    ToolCall,
    Trajectory,
    Usage,
    Verdict,
)
from longhorizon.core.provenance import utc_now
from longhorizon.harness.agent import Agent
from longhorizon.harness.config import HarnessConfig
from longhorizon.harness.context import COMPACT_PROMPT, ContextState, make_strategy
from longhorizon.harness.finalise import extract_answer, force_answer_prompt
from longhorizon.harness.step_verdict import step_verdict
from longhorizon.models.conversation import TokenConversation
from longhorizon.models.router import episode_scope
from longhorizon.models.types import BackendError, Completion, ToolCallError
from longhorizon.tools import ToolContext, ToolResult, ToolSet

Verify = Callable[[Task, Trajectory], list[Verdict]]  # sees answer, steps, tokens


@dataclass
class Limits:
    """Shared across concurrent episodes: separate caps on model calls and tool executions."""

    model: asyncio.Semaphore
    tools: asyncio.Semaphore

    @classmethod
    def from_config(cls, config: HarnessConfig) -> Limits:
        return cls(
            asyncio.Semaphore(config.model_concurrency), asyncio.Semaphore(config.tool_concurrency)
        )


@dataclass
class _Outcome:
    status: Status = Status.COMPLETED
    reason: str | None = None
    answer: str | None = None


@dataclass
class _Run:
    """Mutable state of one episode."""

    task: Task
    convo: TokenConversation
    ctx: ToolContext
    context: ContextState
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)


def initial_messages(task: Task) -> list[Message]:
    system = task.protocol.system_prompt
    user = Message(role="user", content=task.instruction)
    return [Message(role="system", content=system), user] if system else [user]


class EpisodeRunner:
    """Runs episodes of one agent with the tools of each task's protocol."""

    def __init__(
        self,
        agent: Agent,
        toolsets: Callable[[Task], ToolSet],
        config: HarnessConfig,
        *,
        verify: Verify | None = None,
        resources: dict | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.agent = agent
        self.toolsets = toolsets
        self.config = config
        self.verify = verify
        self.resources = resources or {}
        self.limits = limits or Limits.from_config(config)

    async def run(self, task: Task, trajectory_id: str, seed: int | None = None) -> Trajectory:
        toolset = self.toolsets(task)
        workdir = self.config.workdir / trajectory_id
        ctx = ToolContext(trajectory_id, workdir, resources=self.resources, task=task)
        messages = initial_messages(task)
        convo = TokenConversation(self.agent.renderer, messages, toolset.specs() or None)
        notes = ctx.state.setdefault("notes", [])
        run = _Run(task, convo, ctx, ContextState(convo, messages, notes, self._summarise(task)))
        run.timings.started_at = utc_now()
        sampling = self.config.sampling
        if seed is not None:
            sampling = sampling.model_copy(update={"seed": seed})
        try:
            with episode_scope(trajectory_id):  # a router keeps the episode on one server
                outcome = await self._loop(run, toolset, sampling)
        except BackendError as exc:
            outcome = _Outcome(Status.ABORTED, f"model backend failed: {exc}")
        except Exception as exc:  # a harness bug ends this episode, not the rollout
            detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
            outcome = _Outcome(Status.FAILED, f"harness error: {detail}")
        finally:
            await ctx.aclose()
        run.timings.ended_at = utc_now()
        return self._trajectory(run, trajectory_id, outcome, sampling, toolset)

    # ---- the loop -------------------------------------------------------------------------
    async def _loop(self, run: _Run, toolset: ToolSet, sampling: SamplingParams) -> _Outcome:
        budgets = run.task.protocol.budgets
        strategy = make_strategy(run.task.protocol, self.config.reserve_tokens)
        for _ in range(budgets.max_turns):
            if len(run.convo.prompt_ids()) > strategy.threshold() and not (
                await strategy.make_room(run.context)
            ):
                return await self._force(run, sampling, "context limit")
            message, errors, completion = await self._generate(run, sampling)
            if not message.tool_calls and not errors:
                return self._finish(run, message.content, completion)
            run.convo.extend(await self._observe(run, toolset, message, errors))
        return await self._force(run, sampling, "turn limit")

    async def _generate(
        self, run: _Run, sampling: SamplingParams
    ) -> tuple[Message, list[ToolCallError], Completion]:
        budgets = run.task.protocol.budgets
        room = budgets.max_context_tokens - len(run.convo.prompt_ids())
        params = sampling.model_copy(
            update={"max_tokens": max(1, min(budgets.max_response_tokens, room))}
        )
        start = time.perf_counter()
        async with self.limits.model:
            completion = await self.agent.act(run.convo, params)
        run.timings.model_s += time.perf_counter() - start
        run.usage.model_calls += 1
        run.usage.prompt_tokens += len(completion.prompt_ids)
        run.usage.completion_tokens += len(completion.completion_ids)
        message, errors = run.convo.record(completion)
        return message, errors, completion

    def _finish(self, run: _Run, content: str | None, completion: Completion) -> _Outcome:
        answer = extract_answer(run.task.protocol.finalisation, content)
        if answer is not None:
            return _Outcome(Status.COMPLETED, None, answer)
        if completion.finish_reason == "length":
            return _Outcome(Status.TRUNCATED, "response hit L_resp before an answer")
        return _Outcome(Status.FAILED, "the model stopped without a final answer")

    async def _force(self, run: _Run, sampling: SamplingParams, reason: str) -> _Outcome:
        """Roll back the last turn, then ask for the final answer with an explicit prompt."""
        rule = run.task.protocol.finalisation
        pending = run.convo.rollback() if run.convo.in_turn else []
        force = Message(role="user", content=force_answer_prompt(rule, reason))
        run.convo.extend([*pending, force])
        if len(run.convo.prompt_ids()) >= run.task.protocol.budgets.max_context_tokens:
            return _Outcome(Status.TRUNCATED, f"{reason}: no room left for a forced answer")
        message, _, _ = await self._generate(run, sampling)
        answer = extract_answer(rule, message.content)
        if answer is None:
            return _Outcome(Status.TRUNCATED, f"{reason}: no answer after the forced prompt")
        return _Outcome(Status.COMPLETED, f"answer forced at the {reason}", answer)

    async def _observe(
        self, run: _Run, toolset: ToolSet, message: Message, errors: list[ToolCallError]
    ) -> list[Message]:
        """Execute the turn's tool calls concurrently; parse errors become observations too."""
        calls = message.tool_calls or []
        results = await asyncio.gather(*(self._execute(run, toolset, c) for c in calls))
        call_index = len(run.convo.calls) - 1
        observations = []
        for call, result in zip(calls, results, strict=True):
            self._add_step(run, call_index, call, result)
            observations.append(Message(role="tool", content=result.content, tool_call_id=call.id))
        for error in errors:
            text = f"Error: could not parse a tool call ({error.message})"
            bad = ToolCall(id="invalid", function=FunctionCall(name="invalid", arguments="{}"))
            self._add_step(run, call_index, bad, ToolResult(content=text, error=error.message))
            observations.append(Message(role="tool", content=text))
        return observations

    async def _execute(self, run: _Run, toolset: ToolSet, call: ToolCall) -> ToolResult:
        async with self.limits.tools:
            result = await toolset.execute(call, run.ctx)
        run.timings.tools_s += result.duration_s
        run.usage.tool_calls += 1
        return result

    @staticmethod
    def _add_step(run: _Run, call_index: int, call: ToolCall, result: ToolResult) -> None:
        run.steps.append(
            Step(
                index=len(run.steps),
                call_index=call_index,
                state_refs=result.refs,
                action=call,
                observation=result.content,
                error=result.error,
                verdict=step_verdict(result, run.steps),
                duration_s=result.duration_s,
            )
        )

    def _summarise(self, task: Task) -> Callable[[TokenConversation], Awaitable[str]]:
        async def summarise(convo: TokenConversation) -> str:
            convo.extend([Message(role="user", content=COMPACT_PROMPT)])
            params = self.config.sampling.model_copy(
                update={"max_tokens": task.protocol.budgets.max_response_tokens}
            )
            async with self.limits.model:
                completion = await self.agent.act(convo, params)
            message, _ = convo.record(completion)
            return message.content or ""

        return summarise

    # ---- the record -----------------------------------------------------------------------
    def _trajectory(
        self,
        run: _Run,
        trajectory_id: str,
        outcome: _Outcome,
        sampling: SamplingParams,
        toolset: ToolSet,
    ) -> Trajectory:
        traj = Trajectory(
            id=trajectory_id,
            task_id=run.task.id,
            domain=run.task.domain,
            messages=run.convo.history,
            tools=[spec.to_openai() for spec in toolset.specs()],
            steps=run.steps,
            final_answer=outcome.answer,
            status=outcome.status,
            status_reason=outcome.reason,
            calls=run.convo.calls,
            usage=run.usage,
            timings=run.timings,
            provenance=RunProvenance(
                model=self.agent.model_id,
                backend=self.agent.name,
                sampling=sampling,
                seed=sampling.seed,
            ),
        )
        if self.verify is not None and outcome.status is not Status.ABORTED:
            traj.verdicts = self.verify(run.task, traj)
        return traj
