"""Long-context tasks: a seeded report with an injected local rule, asked as multiple choice.

Three rule families, each with a look-alike fact and a rule stated for another section:

* scale: "all prices in section 4 are quoted in thousands of credits"; the same item is
  listed at another depot whose section has a different scale.
* stock: "stock counts in section 6 exclude reserve units" (total = stock + reserve);
  another depot's section says its counts already include them.
* marks: "entries marked † in section 3 are retracted and must be ignored"; another
  station's section says its † entries are estimates that remain valid.

A task is kept only when the answer depends on both the evidence and the rule: the
option a reader ignoring the rule would pick (found by running the reader with the rules
off) is a different, wrong option; the right option is not an extreme of the four (no
"pick the largest" shortcut) and no option appears in the question; and the reader with
the rules on finds exactly the answer.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from longhorizon.core.provenance import Provenance
from longhorizon.core.task import Budgets, Finalisation, Protocol, Task, VerifierSpec
from longhorizon.domains.instruction.reader import solve
from longhorizon.domains.instruction.report import (
    RETRACTED,
    SCALE_WORDS,
    VALID,
    DepotRow,
    Reading,
    Report,
    Section,
    Skeleton,
    skeleton,
)
from longhorizon.domains.instruction.tasks import DOMAIN, accept_n, task_id
from longhorizon.domains.instruction.text import capitalise
from longhorizon.domains.instruction.verify import CHOICE
from longhorizon.verifiers.ifeval.nlp import count_words

GENERATOR = "longhorizon.domains.instruction.propose_longcontext_task"
LETTERS = "ABCD"
MIN_DOCUMENT_WORDS = 2500
LONGCONTEXT_BUDGETS = Budgets(max_turns=2, max_response_tokens=1024, max_context_tokens=16384)
INTRO = "Read the report below and answer the multiple-choice question that follows it."
OUTRO = (
    "Give only the letter of the correct option inside <answer></answer>, "
    "for example <answer>B</answer>."
)
NEUTRAL_NOTES: tuple[str, ...] = (
    "Dates in this report use the year-month-day format.",
    "Sensor readings are given in kPa.",
    "Codes are unique within a depot but may repeat across depots.",
    "Figures in the prose sections are rounded.",
)


@dataclass(frozen=True)
class Puzzle:
    """A question, its four option values (the right one first) and the rule behind it."""

    family: str
    question: str
    values: tuple[float, float, float, float]  # right, rule ignored, look-alike, misread rule
    unit: str
    rule: str
    evidence: str

    def option(self, value: float) -> str:
        return f"{value:.1f} {self.unit}" if self.unit == "kPa" else f"{int(value)} {self.unit}"


def state_rule(rng: random.Random, report: Report, number: int, rule: str) -> str:
    """Write a rule ("... in {scope} ...") in the notes or inside its section; return the text."""
    if rng.random() < 0.5:
        text = rule.format(scope=f"section {number}")
        text = f"In this report, {text}" if rng.random() < 0.5 else capitalise(text)
        report.notes.append(text)
    else:
        text = capitalise(rule.format(scope="this section"))
        report.section(number).notes.append(text)
    return text


def shared_item(rng: random.Random, target: Section, other: Section) -> tuple[DepotRow, DepotRow]:
    """A row of `target` and a row with the same item in `other` (added there if missing)."""
    row = rng.choice(target.depot_rows)
    twin = next((r for r in other.depot_rows if r.item == row.item), None)
    if twin is None:
        twin = rng.choice(other.depot_rows)
        twin.item = row.item
    return row, twin


def scale_puzzle(rng: random.Random, sk: Skeleton) -> Puzzle:
    target, other = rng.sample(sk.depots, 2)
    row, twin = shared_item(rng, target, other)
    f_target, f_other = rng.sample(sorted(SCALE_WORDS), 2)
    scale = "all prices in {scope} are quoted in %s of credits"
    rule = state_rule(rng, sk.report, target.number, scale % SCALE_WORDS[f_target] + ".")
    state_rule(rng, sk.report, other.number, scale % SCALE_WORDS[f_other] + ".")
    v, w = row.price, twin.price
    return Puzzle(
        "scale",
        f"What is the unit price of the {row.item} at the {target.place} depot, in credits?",
        (f_target * v, v, f_other * w, f_other * v),
        "credits",
        rule,
        "| " + " | ".join(row.cells()) + " |",
    )


def stock_puzzle(rng: random.Random, sk: Skeleton) -> Puzzle:
    target, other = rng.sample(sk.depots, 2)
    row, twin = shared_item(rng, target, other)
    exclude = (
        "stock counts in {scope} exclude reserve units; the total stock of an item there "
        "is its listed stock plus its reserve."
    )
    rule = state_rule(rng, sk.report, target.number, exclude)
    state_rule(
        rng, sk.report, other.number, "stock counts in {scope} already include reserve units."
    )
    return Puzzle(
        "stock",
        f"What is the total stock of the {row.item} at the {target.place} depot, in units?",
        (row.stock + row.reserve, row.stock, twin.stock, twin.stock + twin.reserve),
        "units",
        rule,
        "| " + " | ".join(row.cells()) + " |",
    )


def _date(year: int, day: int) -> str:
    month, mday = divmod(day - 1, 28)
    return f"{year}-{min(month + 1, 12):02d}-{mday + 1:02d}"


def _set_history(station: Section, sensor: str, entries: list[Reading]) -> None:
    kept = [r for r in station.readings if r.sensor != sensor]
    station.readings = sorted(kept + entries, key=lambda r: (r.date, r.sensor))


def marks_puzzle(rng: random.Random, sk: Skeleton) -> Puzzle:
    target, other = rng.sample(sk.stations, 2)
    sensor = rng.choice(sk.sensors)
    days = sorted(rng.sample(range(1, 330), 4))
    values = [round(rng.uniform(20.0, 95.0), 1) for _ in range(4)]
    history = [
        Reading(_date(sk.year, d), sensor, v) for d, v in zip(days[:3], values, strict=False)
    ]
    history[-1].mark = "†"
    _set_history(target, sensor, history)
    twin = Reading(_date(sk.year, days[3]), sensor, values[3], "†")
    _set_history(other, sensor, [r for r in other.readings if r.sensor == sensor] + [twin])
    for station in (target, other):  # other † entries, so the rule matters beyond one row
        for reading in station.readings:
            if reading.sensor != sensor and rng.random() < 0.15:
                reading.mark = "†"
    marks = "entries marked † in {scope} %s."
    rule = state_rule(rng, sk.report, target.number, marks % RETRACTED)
    state_rule(rng, sk.report, other.number, marks % VALID)
    return Puzzle(
        "marks",
        f"What is the most recent reading of sensor {sensor} at the {target.place} station, "
        "in kPa?",
        (values[1], values[2], values[0], values[3]),
        "kPa",
        rule,
        "\n".join("| " + " | ".join(r.cells()) + " |" for r in history),
    )


FAMILIES: dict[str, Callable[[random.Random, Skeleton], Puzzle]] = {
    "scale": scale_puzzle,
    "stock": stock_puzzle,
    "marks": marks_puzzle,
}


def render_prompt(report: Report, question: str, options: list[str]) -> str:
    lines = [f"{letter}. {text}" for letter, text in zip(LETTERS, options, strict=True)]
    return "\n\n".join(
        [
            INTRO,
            f"<document>\n{report.text()}\n</document>",
            f"Question: {question}",
            "\n".join(lines),
            OUTRO,
        ]
    )


def shortcut_free(puzzle: Puzzle, options: list[str]) -> bool:
    """Distinct options, none in the question, and the right one not an extreme value."""
    values = puzzle.values
    if len(set(options)) != len(options):
        return False
    if any(re.search(rf"\b{re.escape(o.split()[0])}\b", puzzle.question) for o in options):
        return False
    return min(values) < values[0] < max(values)


def longcontext_protocol() -> Protocol:
    return Protocol(
        budgets=LONGCONTEXT_BUDGETS, finalisation=Finalisation(kind="answer_tag", tag="answer")
    )


def propose_longcontext_task(seed: int, family: str | None = None) -> Task | None:
    """A long-context task for this seed, or None when the draw has a shortcut."""
    rng = random.Random(f"longcontext|{seed}")
    sk = skeleton(rng)
    name = family or rng.choice(sorted(FAMILIES))
    puzzle = FAMILIES[name](rng, sk)
    sk.report.notes += rng.sample(NEUTRAL_NOTES, 2)
    rng.shuffle(sk.report.notes)
    order = rng.sample(range(4), 4)  # order[i] = which value option i shows
    options = [puzzle.option(puzzle.values[i]) for i in order]
    if not shortcut_free(puzzle, options):
        return None
    prompt = render_prompt(sk.report, puzzle.question, options)
    answer, ignored = LETTERS[order.index(0)], LETTERS[order.index(1)]
    solved, naive = solve(prompt), solve(prompt, apply_rules=False)
    if solved is None or solved.letter != answer or naive is None or naive.letter != ignored:
        return None
    words = count_words(sk.report.text())
    if words < MIN_DOCUMENT_WORDS:
        return None
    return Task(
        id=task_id("lc", f"{seed}\n{prompt}"),
        domain=DOMAIN,
        instruction=prompt,
        answer=answer,
        verifiers=[VerifierSpec(name=CHOICE, params={"letters": LETTERS})],
        protocol=longcontext_protocol(),
        provenance=Provenance(source="synthetic", generator=GENERATOR, seed=seed),
        metadata={
            "variant": "longcontext",
            "family": name,
            "question": puzzle.question,
            "options": options,
            "ignore_rule_answer": ignored,
            # The evidence is in the prompt, not behind a tool, so it is not E_q (which the
            # acceptance rules require to be consulted through tool calls).
            "evidence": [puzzle.evidence, puzzle.rule],
            "document_words": words,
        },
    )


def propose_longcontext_tasks(n: int, seed: int = 0) -> list[Task]:
    return accept_n(propose_longcontext_task, n, seed)
