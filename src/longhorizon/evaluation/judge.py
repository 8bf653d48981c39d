"""An LLM judge for answers no verifier can check: answer equivalence and rubric grading.

The judge is any OpenAI-compatible chat server (`eval --judge-base-url URL --judge-model M`),
reached through the `openai` backend with greedy decoding and plain chat (no vLLM token-id
fields, so hosted APIs accept the requests). Its prompts are files beside this module:
`judge_equivalence.jinja` (is a final answer the reference's?) and `judge_rubric.jinja`
(points per rubric item). Replies are parsed strictly:

- equivalence: the last non-empty line is `VERDICT: correct` or `VERDICT: incorrect`
  (case and surrounding `*` aside);
- rubric: a line `ITEM k: <points>` for every item k = 1..n (a later line for the same k
  replaces an earlier one), the points a number from 0 to the item's maximum, optionally
  written `x/max` or followed by "points".

An item the judge cannot score is never a zero: it is `Unscored` with one of four kinds
(`NO_JUDGE`, `JUDGE_FAILED` for a dead server or an HTTP error, `JUDGE_EMPTY`,
`JUDGE_UNPARSED`) and a message; its `ItemResult` carries the kind in `unscored`, and no
metric counts it (`metrics.scored_only`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2

from longhorizon.core.messages import Message
from longhorizon.core.sampling import SamplingParams
from longhorizon.evaluation.options import JudgeSettings
from longhorizon.models.openai_backend import OpenAIBackend
from longhorizon.models.types import Backend

__all__ = [
    "JUDGE_EMPTY",
    "JUDGE_FAILED",
    "JUDGE_UNPARSED",
    "NO_JUDGE",
    "NO_JUDGE_MESSAGE",
    "Equivalence",
    "Judge",
    "JudgeReplyError",
    "RubricGrade",
    "RubricItem",
    "Unscored",
    "judge_info",
    "open_judge",
    "parse_rubric_reply",
    "parse_verdict",
]

NO_JUDGE, JUDGE_FAILED, JUDGE_EMPTY, JUDGE_UNPARSED = (
    "no judge",
    "judge failed",
    "judge reply empty",
    "judge reply not parsed",
)
NO_JUDGE_MESSAGE = (
    "no judge configured: items that need an LLM judge are left out or unscored "
    "(pass --judge-base-url and --judge-model, any OpenAI-compatible server)"
)
_VERDICT = re.compile(r"VERDICT\s*:\s*(correct|incorrect)\.?", re.IGNORECASE)
_ITEM = re.compile(r"ITEM\s+(\d+)\s*:\s*(.*)", re.IGNORECASE)
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_POINTS = re.compile(rf"{_NUMBER}(?:\s*/\s*{_NUMBER})?(?:\s*(?:points?|pts?))?\.?", re.IGNORECASE)
_EMPHASIS = "*_` "  # markdown a judge may wrap a verdict line in


@dataclass(frozen=True)
class RubricItem:
    """One gradable item of a rubric: at most `points` for what `text` asks."""

    points: float
    text: str


@dataclass(frozen=True)
class Unscored:
    """Why an item has no score; `kind` is one of the four module constants."""

    kind: str
    message: str


@dataclass(frozen=True)
class Equivalence:
    correct: bool
    reply: str


@dataclass(frozen=True)
class RubricGrade:
    awarded: tuple[float, ...]  # points per rubric item, in rubric order
    reply: str

    @property
    def earned(self) -> float:
        return sum(self.awarded)


class JudgeReplyError(ValueError):
    """A judge reply that is not in the format its prompt asks for."""


def parse_verdict(reply: str) -> bool:
    """True for `VERDICT: correct` on the last non-empty line, False for `incorrect`."""
    lines = [line.strip().strip(_EMPHASIS) for line in reply.splitlines() if line.strip()]
    match = _VERDICT.fullmatch(lines[-1]) if lines else None
    if match is None:
        last = lines[-1][:120] if lines else ""
        raise JudgeReplyError(f"the last line is not 'VERDICT: correct|incorrect': {last!r}")
    return match.group(1).lower() == "correct"


def parse_rubric_reply(reply: str, items: Sequence[RubricItem]) -> tuple[float, ...]:
    """The points awarded per item from the reply's `ITEM k: <points>` lines."""
    given: dict[int, str] = {}
    for line in reply.splitlines():
        match = _ITEM.fullmatch(line.strip().strip(_EMPHASIS))
        if match is not None:
            given[int(match.group(1))] = match.group(2).strip().strip(_EMPHASIS)
    missing = [k for k in range(1, len(items) + 1) if k not in given]
    if missing:
        raise JudgeReplyError(f"no 'ITEM k: <points>' line for item(s) {missing}")
    unknown = sorted(k for k in given if not 1 <= k <= len(items))
    if unknown:
        raise JudgeReplyError(f"ITEM line(s) for item(s) {unknown}; the rubric has {len(items)}")
    return tuple(_points(k, given[k], items[k - 1].points) for k in range(1, len(items) + 1))


def _points(k: int, text: str, most: float) -> float:
    match = _POINTS.fullmatch(text)
    if match is None:
        raise JudgeReplyError(f"ITEM {k}: {text[:80]!r} is not a number of points")
    awarded = float(match.group(1))
    out_of = match.group(2)
    if out_of is not None and abs(float(out_of) - most) > 1e-9:
        raise JudgeReplyError(f"ITEM {k}: out of {out_of}, but the item is worth {_num(most)}")
    if awarded > most + 1e-9:
        raise JudgeReplyError(f"ITEM {k}: {_num(awarded)} points, more than its {_num(most)}")
    return awarded


def _num(x: float) -> str:
    """1.5 -> "1.5", 10.0 -> "10": points as a person writes them."""
    return f"{x:g}"


@cache
def _template(name: str) -> jinja2.Template:
    text = resources.files("longhorizon.evaluation").joinpath(name).read_text(encoding="utf-8")
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False).from_string(text)


def equivalence_prompt(problem: str, reference: str, answer: str) -> str:
    return _template("judge_equivalence.jinja").render(
        problem=problem.strip(), reference=reference.strip(), answer=answer.strip() or "(none)"
    )


def rubric_prompt(problem: str, items: Sequence[RubricItem], response: str) -> str:
    shown = [{"points": _num(i.points), "text": i.text.strip()} for i in items]
    return _template("judge_rubric.jinja").render(
        problem=problem.strip(),
        items=shown,
        total=_num(sum(i.points for i in items)),
        response=response.strip() or "(empty)",
    )


class Judge:
    """Asks a chat backend for verdicts; every failure comes back as `Unscored`, never raised."""

    def __init__(self, backend: Backend, settings: JudgeSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.params = SamplingParams(temperature=0.0, max_tokens=settings.max_tokens)

    async def equivalent(self, problem: str, reference: str, answer: str) -> Equivalence | Unscored:
        reply = await self.ask(equivalence_prompt(problem, reference, answer))
        if isinstance(reply, Unscored):
            return reply
        try:
            return Equivalence(parse_verdict(reply), reply)
        except JudgeReplyError as exc:
            return Unscored(JUDGE_UNPARSED, f"{exc}; reply: {reply[-300:]!r}")

    async def grade(
        self, problem: str, items: Sequence[RubricItem], response: str
    ) -> RubricGrade | Unscored:
        reply = await self.ask(rubric_prompt(problem, items, response))
        if isinstance(reply, Unscored):
            return reply
        try:
            return RubricGrade(parse_rubric_reply(reply, items), reply)
        except JudgeReplyError as exc:
            return Unscored(JUDGE_UNPARSED, f"{exc}; reply: {reply[-300:]!r}")

    async def ask(self, prompt: str) -> str | Unscored:
        """The judge's reply text, or why there is none."""
        where = f"{self.settings.model} at {self.settings.base_url}"
        try:
            result = await self.backend.chat([Message(role="user", content=prompt)], self.params)
        except Exception as exc:  # a dead or failing judge must not end the run: unscored
            return Unscored(JUDGE_FAILED, f"the judge {where} failed: {type(exc).__name__}: {exc}")
        text = (result.message.content or "").strip()
        if not text:
            return Unscored(JUDGE_EMPTY, f"the judge {where} returned an empty reply")
        return text


@asynccontextmanager
async def open_judge(settings: JudgeSettings | None) -> AsyncIterator[Judge | None]:
    """The configured judge for one event loop (None when none is configured)."""
    if settings is None:
        yield None
        return
    async with OpenAIBackend(
        settings.base_url,
        model=settings.model,
        api_key_env=settings.api_key_env,
        timeout_s=settings.timeout_s,
        max_retries=2,
        token_ids=False,
    ) as backend:
        yield Judge(backend, settings)


def judge_info(settings: JudgeSettings | None) -> dict[str, Any] | str:
    """What a result's `info["judge"]` records: the judge, or the no-judge message."""
    if settings is None:
        return NO_JUDGE_MESSAGE
    return {"model": settings.model, "base_url": settings.base_url}
