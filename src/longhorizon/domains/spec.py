"""What a domain is: one typed `DomainSpec` per `domains/<name>/`, all the pipeline asks of it.

A spec names its level config (how hard its tasks are), its protocol (tools and budgets), its
one `verify` (the synthesis filter, the training reward and the evaluation metric; a verifier
name the domain does not define is an error), and builds
its seeded `World` at a level: the proposer, the held-out split, the scripted expert, the
no-tool guesser and the resources its tools read. Synthesis, the held-out bench, the pipeline
and the report take everything domain-specific from here; a new domain is a new spec.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from longhorizon.core.task import Protocol, Task
from longhorizon.core.trajectory import Trajectory, Verdict
from longhorizon.harness.agent import Agent, Script, ScriptedAgent
from longhorizon.kag import KnowledgeActionGraph
from longhorizon.models.render import ChatRenderer
from longhorizon.synthesis.types import Domain, Proposer
from longhorizon.tools.base import ToolSet
from longhorizon.tools.catalog import build_toolset

__all__ = [
    "HELDOUT_SEED",
    "BudgetError",
    "DomainSpec",
    "LevelError",
    "UnknownVerifierError",
    "Verify",
    "World",
    "check_verifiers",
]

LevelT = TypeVar("LevelT", bound=BaseModel)
Verify = Callable[[Task, Trajectory], list[Verdict]]
# Held-out task seeds start here; synthesis seeds its proposer stream with small integers
# (`SynthConfig.seed`, 0 by default), so a held-out draw never reuses a synthesis draw.
HELDOUT_SEED = 1_000_000


class LevelError(ValueError):
    """A level config that the domain's level model rejects (the message names the domain)."""


class BudgetError(ValueError):
    """A turn budget below what the domain's tasks need (the message names both numbers)."""


class UnknownVerifierError(ValueError):
    """A task names a verifier its domain does not define: an error, never a silent pass."""


@dataclass(frozen=True)
class World:
    """A domain at one level and world seed: what synthesis and its held-out bench run in.

    `heldout(n, seed)` gives the first n held-out tasks of the stream `seed` (>= HELDOUT_SEED);
    `expert(task)` is the scripted expert's script for a task; `guesser` is the no-tool attempt
    whose success flags a shortcut (None: the domain has no tools, nothing to shortcut).
    """

    proposer: Proposer
    heldout: Callable[[int, int], list[Task]]
    expert: Callable[[Task], Script]
    guesser: Script | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)  # what the tools read
    load_kag: Callable[[KnowledgeActionGraph], None] | None = None  # the world's evidence nodes
    info: Mapping[str, Any] = field(default_factory=dict)  # describes the world in bench results
    screen: Callable[[Task], str | None] | None = None  # rejects a task before it is solved


def _no_corpus(synth_out: Path) -> list[Path]:
    del synth_out
    return []


def _same(level: LevelT) -> LevelT:
    """A level already small enough for a smoke run (the defaults are)."""
    return level


def _zero(level: Any) -> int:
    """Nothing declared: no tool steps, no measured turn length."""
    del level
    return 0


def fixed_turn_tokens(tokens: int) -> Callable[[Any], int]:
    """A domain whose longest expert turn is `tokens` long at every level."""

    def turn_tokens(level: Any) -> int:
        del level
        return tokens

    return turn_tokens


@dataclass(frozen=True)
class DomainSpec(Generic[LevelT]):
    """One domain: level config, protocol, verifier, world builder and where resources live.

    `open_world(level, seed, resource_dir)` builds the seeded world and writes its resources
    (a corpus) under `resource_dir`; `corpus(synth_out)` names the corpus files a synthesis run
    in `synth_out` wrote (what OPD rollouts and tools over synthesised tasks read).
    `tool_steps(level)` is the most tool steps a task at `level` needs on the path the
    demonstrations take (one call a turn); with the answer turn it is the turn budget a
    rollout needs (`required_turns`), which recipes and eval configs are checked against.
    """

    name: str
    description: str
    level: type[LevelT]
    protocol: Protocol
    verdicts: Verify  # the domain's checks; callers use `verify`, which guards them
    verifiers: frozenset[str]  # the verifier names `verdicts` understands
    open_world: Callable[[LevelT, int, Path], World]
    process_verifiers: frozenset[str] = frozenset()  # about the path, not the answer
    # Verdict names by role in RL rewards: summaries restate other verdicts (left out of the
    # `fraction` reward); rubric checks judge the trajectory's steps (PAPO's process reward,
    # never part of the outcome). A domain without rubric checks cannot train with PAPO.
    summary_verifiers: frozenset[str] = frozenset()
    rubric_verifiers: frozenset[str] = frozenset()
    min_tool_steps: int = 0
    heldout_size: int = 100
    corpus: Callable[[Path], list[Path]] = _no_corpus
    extra_benches: tuple[str, ...] = ()  # other benches that measure this domain (e.g. ifeval)
    tool_steps: Callable[[LevelT], int] = _zero
    # Tokens (SmolLM2's tokenizer) of the longest model turn the expert writes at a level;
    # a per-turn budget below it cuts expert-like turns (default 0: not measured, no check).
    turn_tokens: Callable[[LevelT], int] = _zero
    # The level scaled to `longhorizon run --smoke`: the same kind of task, a small world.
    smoke_level: Callable[[LevelT], LevelT] = _same

    @property
    def bench(self) -> str:
        """The name of the domain's held-out bench."""
        return f"{self.name}-heldout"

    @property
    def tools(self) -> tuple[str, ...]:
        return tuple(self.protocol.tools)

    def parse_level(self, data: Mapping[str, Any] | str | BaseModel | None) -> LevelT:
        """The level from a recipe mapping, a JSON string, a model, or None (the default)."""
        if isinstance(data, self.level):
            return data
        try:
            if isinstance(data, BaseModel):
                return self.level.model_validate(data.model_dump())
            if isinstance(data, str):
                return self.level.model_validate(json.loads(data) if data.strip() else {})
            return self.level.model_validate(dict(data or {}))
        except (ValidationError, json.JSONDecodeError) as exc:
            raise LevelError(f"{self.name} level {data!r}: {exc}") from None

    def required_turns(self, level: LevelT) -> int:
        """Turns a rollout needs for the hardest task at `level`: its tool steps, then the
        answer (a domain without tools: 1)."""
        return self.tool_steps(level) + 1

    def check_turns(self, level: LevelT, max_turns: int | None, where: str) -> None:
        """Raise `BudgetError` when `max_turns` (None: each task's own T_max) is below
        `required_turns(level)`; `where` names the setting (e.g. "eval.max_turns")."""
        need = self.required_turns(level)
        if max_turns is not None and max_turns < need:
            steps = self.tool_steps(level)
            raise BudgetError(
                f"{where} = {max_turns} is below the {need} turns {self.name} tasks need at "
                f"its level ({steps} tool steps + the answer turn): raise it to >= {need}, "
                f"or lower the {self.name} level"
            )

    def token_shortfall(
        self, level: LevelT, max_tokens: int | None, section: str, where: str
    ) -> str | None:
        """Why `max_tokens` per turn (None: each task's own L_resp), set by `where` in config
        section `section`, cuts the turns an expert writes at `level`; None when it does not.
        A warning, not an error: a shorter budget can be a deliberate speed choice (distilling
        on a prefix)."""
        need = self.turn_tokens(level)
        if max_tokens is None or max_tokens >= need:
            return None
        cut = " (a cut tool call does not parse)" if self.tools else ""
        return (
            f"{where} = {max_tokens} tokens per turn is below the {need} of {self.name}'s "
            f"longest expert turn at its level: such turns are cut{cut}; set "
            f"{section}.domain_max_tokens.{self.name} >= {need}"
        )

    def verify(self, task: Task, trajectory: Trajectory) -> list[Verdict]:
        """The one verifier: synthesis filter, training reward, OPD rollouts, evaluation.

        A task naming a verifier this domain does not define is an error, never a skip.
        """
        check_verifiers(task, self.name, self.verifiers)
        return self.verdicts(task, trajectory)

    def toolset(self, task: Task) -> ToolSet:
        """The tools the task's protocol lists (the same in synthesis, rollouts and eval)."""
        return build_toolset(task.protocol.tools)

    def kag_path(self, synth_out: Path) -> Path:
        """Where a synthesis run in `synth_out` keeps its KAG (unless given a DSN)."""
        return synth_out / "kag.db"

    def synth_domain(
        self, world: World, renderer: ChatRenderer, model: Agent | None = None
    ) -> Domain:
        """Synthesis' view of this domain; `model`, when given, replaces expert and guesser."""
        return Domain(
            name=self.name,
            proposer=world.proposer,
            solver=_fixed(model)
            if model is not None
            else _scripted(renderer, world.expert, self.name),
            guesser=_guesser(world.guesser, renderer, model),
            toolset=self.toolset,
            verify=self.verify,
            min_tool_steps=self.min_tool_steps,
            resources=dict(world.resources),
            verifiers=self.verifiers,
            process_verifiers=self.process_verifiers,
            screen=world.screen,
        )


def _fixed(agent: Agent) -> Callable[[Task], Agent]:
    """The same agent (an LLM) for every task."""
    return lambda task: agent


def _scripted(
    renderer: ChatRenderer, script_for: Callable[[Task], Script], name: str
) -> Callable[[Task], Agent]:
    """A scripted expert made for each task."""
    return lambda task: ScriptedAgent(renderer, script_for(task), f"{name}-expert")


def _guesser(
    script: Script | None, renderer: ChatRenderer, model: Agent | None
) -> Callable[[Task], Agent] | None:
    """The no-tool attempt: the model when one solves, else the domain's guess script; none
    when the domain has no guess script (no tools, so nothing to shortcut)."""
    if script is None:
        return None
    if model is not None:
        return _fixed(model)
    return lambda task: ScriptedAgent(renderer, script, "no-tool-guesser")


def check_verifiers(task: Task, domain: str, known: frozenset[str]) -> None:
    """Raise when the task names a verifier its domain does not define."""
    unknown = sorted({s.name for s in task.verifiers} - known)
    if unknown:
        raise UnknownVerifierError(
            f"task {task.id}: unknown verifier(s) {', '.join(map(repr, unknown))} for the "
            f"{domain} domain; it knows: {', '.join(sorted(known))}"
        )
