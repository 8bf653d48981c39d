"""A scripted expert for molecule tasks: it follows the task's plan one tool call a turn.

It reads every value it decides on from a tool's observation (descriptors, rule_filter,
substructure, similarity, affinity_proxy); the task's metadata only tells it which molecules
and constraints the question states, as a reader of the question would know them.

With `error_rate > 0` some episodes go wrong the way agents do:
- `typo` (recoverable): one call carries a mistyped SMILES; the tool answers with an error
  and the expert calls again with the exact string, and still solves the task;
- `skip_last`: it answers before examining the last molecule (a filter includes it unseen,
  a rank leaves it out, a pair picks A), which the verifier rejects.
"""

from __future__ import annotations

import json
import random
from collections.abc import Generator
from typing import Any

from longhorizon.core.messages import Message, last_observations
from longhorizon.core.task import Task
from longhorizon.domains.molecules.constraints import PATTERNS, Constraint
from longhorizon.domains.molecules.level import RANK_TOP
from longhorizon.harness.context import COMPACT_PROMPT, DIGEST_HEADER
from longhorizon.tools.chem import holds

MISTAKES = ("typo", "skip_last")
Turns = Generator[str, str, None]  # yields assistant texts, receives observations
Call = Generator[str, str, dict[str, Any]]  # a tool call's turns, returning its JSON


class _Stuck(Exception):
    """An observation the plan cannot read (an error it did not cause): it answers as is."""


def tool_call(name: str, **arguments: Any) -> str:
    """A Hermes tool-call block."""
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


class MoleculesExpert:
    """A stateful script: a generator of turns fed with each turn's observations."""

    def __init__(self, task: Task, *, error_rate: float = 0.0, seed: int = 0) -> None:
        self.task = task
        self.meta = task.metadata
        self.molecules: list[str] = list(self.meta["molecules"])
        rng = random.Random(f"expert:{seed}:{task.id}")
        self.mistake: tuple[str, int] | None = None
        if rng.random() < error_rate:
            self.mistake = (rng.choice(MISTAKES), rng.randrange(len(self.molecules)))
        self.notes: list[str] = []
        self._turns: Turns | None = None
        self._last = ""

    # ---- the script protocol --------------------------------------------------------------
    def __call__(self, messages: list[Message]) -> str:
        last = messages[-1]
        if last.role == "user" and last.content != self.task.instruction:
            if last.content == COMPACT_PROMPT:
                return self._digest()
            if DIGEST_HEADER in (last.content or ""):
                return self._last  # the pending observation was compacted away: ask again
            return self._answer([], "I have to answer now.")
        self._last = self._advance(messages)
        return self._last

    def _advance(self, messages: list[Message]) -> str:
        try:
            if self._turns is None or messages[-1].role == "user":  # a fresh or restarted run
                self._turns = self._solve()
                return next(self._turns)
            observation = last_observations(messages)
            return self._turns.send(observation)
        except StopIteration:
            return self._answer([], "I have no further steps.")
        except _Stuck as exc:
            return self._answer([], f"The tool failed ({exc}); I cannot finish the plan.")

    def _solve(self) -> Turns:
        kind = self.meta["kind"]
        plan = {"filter": self._filter, "rank": self._rank, "pair": self._pair}[kind]
        yield from plan()

    # ---- plans ----------------------------------------------------------------------------
    def _filter(self) -> Turns:
        constraints = [Constraint.model_validate(c) for c in self.meta["constraints"]]
        props = [c for c in constraints if c.kind == "property"]
        others = [c for c in constraints if c.kind != "property"]
        kept: list[str] = []
        for i, smiles in enumerate(self.molecules):
            if self._skips(i):
                yield self._answer([*kept, smiles], "The last one looks similar; I include it.")
                return
            data = yield from self._call(i, "descriptors", smiles=smiles)
            failed = [
                c for c in props if not holds(data[c.property or ""], c.op or "", c.value or 0)
            ]
            ok = not failed
            for c in others if ok else []:
                ok = yield from self._check(i, smiles, c)
                if not ok:
                    break
            self.notes.append(f"{smiles}: {'keep' if ok else 'drop'}")
            if ok:
                kept.append(smiles)
        yield self._answer(kept, f"{len(kept)} of {len(self.molecules)} satisfy every constraint.")

    def _check(self, i: int, smiles: str, c: Constraint) -> Generator[str, str, bool]:
        if c.kind == "rule":
            data = yield from self._call(i, "rule_filter", smiles=smiles, rule=c.rule)
            return bool(data["passes"])
        pattern = PATTERNS[c.pattern or ""]
        data = yield from self._call(i, "substructure", smiles=smiles, pattern=pattern)
        return bool(data["match"]) == c.present

    def _rank(self) -> Turns:
        by, scored = self.meta["by"], []
        for i, smiles in enumerate(self.molecules):
            if self._skips(i):
                break
            if by == "similarity":
                ref = self.meta["reference"]
                data = yield from self._call(i, "similarity", smiles_a=ref, smiles_b=smiles)
                value = data["tanimoto"]
            else:
                value = (yield from self._call(i, "descriptors", smiles=smiles))[by]
            self.notes.append(f"{smiles}: {by} {value}")
            scored.append((value, smiles))
        best = sorted(scored, reverse=self.meta["direction"] == "highest")[:RANK_TOP]
        yield self._answer(
            [s for _, s in best], f"Ordered by {by}, {self.meta['direction']} first."
        )

    def _pair(self) -> Turns:
        scores = []
        for i, smiles in enumerate(self.molecules):
            if self._skips(i):
                yield self._answer(self.molecules[:1], "Molecule A looks the stronger binder.")
                return
            data = yield from self._call(i, "affinity_proxy", smiles=smiles)
            self.notes.append(f"{smiles}: proxy {data['score']}")
            scores.append((data["score"], smiles))
        pick = max if self.meta["direction"] == "larger" else min
        yield self._answer([pick(scores)[1]], f"It has the {self.meta['direction']} proxy score.")

    # ---- one call -------------------------------------------------------------------------
    def _call(self, i: int, name: str, **arguments: Any) -> Call:
        """Call a tool (first with a mistyped SMILES under a `typo` mistake); its JSON."""
        what = f"{name} of molecule {i + 1}"
        if self.mistake == ("typo", i):
            self.mistake = None
            key = "smiles_b" if "smiles_b" in arguments else "smiles"
            wrong = {**arguments, key: arguments[key] + "("}
            yield f"Next, the {what}.\n{tool_call(name, **wrong)}"
            again = "I mistyped that SMILES; calling again with the exact string."
            observation = yield f"{again}\n{tool_call(name, **arguments)}"
        else:
            observation = yield f"Next, the {what}.\n{tool_call(name, **arguments)}"
        try:
            return dict(json.loads(observation))
        except ValueError:
            raise _Stuck(observation[:200]) from None

    def _skips(self, i: int) -> bool:
        return (
            self.mistake is not None
            and self.mistake[0] == "skip_last"
            and (i == len(self.molecules) - 1)
        )

    # ---- texts ----------------------------------------------------------------------------
    @staticmethod
    def _answer(lines: list[str], reason: str) -> str:
        body = "\n".join(lines)
        return f"{reason}\n<answer>\n{body}\n</answer>"

    def _digest(self) -> str:
        found = "\n".join(f"- {n}" for n in self.notes) or "- nothing yet"
        return f"Task: {self.task.instruction}\nFound so far:\n{found}"


def expert_script(task: Task, *, error_rate: float = 0.0, seed: int = 0) -> MoleculesExpert:
    """The script for `ScriptedAgent(renderer, expert_script(task))`."""
    return MoleculesExpert(task, error_rate=error_rate, seed=seed)
