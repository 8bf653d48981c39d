"""The long-context expert: it reads the report in the prompt, applies its local rules, answers.

Nothing here looks at the task's metadata: the reader splits the prompt into report,
question and options, finds the section the question is about, parses that section's
table, collects the rules stated for it (in the reading notes with a section number, or
inside the section as "this section"), computes the value and picks the matching option.
With ``apply_rules=False`` it answers as a reader who ignores the rules would; the task
builder uses that to keep only tasks whose answer depends on the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SECTION = re.compile(r"^Section (\d+)\. (.+)$", re.MULTILINE)
_OPTION = re.compile(r"^([A-D])\. (.+)$", re.MULTILINE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_SCOPE = r"(?:section (\d+)|this section)"
_SCALE = re.compile(
    rf"prices in {_SCOPE} are quoted in (tens|hundreds|thousands) of credits", re.IGNORECASE
)
_EXCLUDE = re.compile(rf"stock counts in {_SCOPE} exclude reserve units", re.IGNORECASE)
_MARK = re.compile(
    rf"entries marked (\S) in {_SCOPE} are (retracted and must be ignored|\w+ and remain valid)",
    re.IGNORECASE,
)
_QUESTIONS: dict[str, re.Pattern[str]] = {
    "scale": re.compile(r"unit price of the (.+?) at the (\w+) depot"),
    "stock": re.compile(r"total stock of the (.+?) at the (\w+) depot"),
    "marks": re.compile(r"most recent reading of sensor (\S+) at the (\w+) station"),
}
FACTORS: dict[str, int] = {"tens": 10, "hundreds": 100, "thousands": 1000}


@dataclass
class Rules:
    """The local rules of a report, by section number."""

    factor: dict[int, int] = field(default_factory=dict)
    exclude_reserve: set[int] = field(default_factory=set)
    retracted: dict[int, set[str]] = field(default_factory=dict)
    sentences: dict[int, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Solution:
    letter: str
    value: float
    rationale: str


def split_prompt(prompt: str) -> tuple[str, str, dict[str, str]] | None:
    """(report, question, options by letter), or None without a <document> block."""
    start, end = prompt.find("<document>"), prompt.find("</document>")
    if start < 0 or end < 0:
        return None
    document, rest = prompt[start + len("<document>") : end], prompt[end:]
    match = re.search(r"Question: (.+)", rest)
    question = match.group(1).strip() if match else ""
    return document, question, dict(_OPTION.findall(rest))


def parse_sections(document: str) -> tuple[str, dict[int, tuple[str, str]]]:
    """(preamble, {number: (title, body)})."""
    heads = list(_SECTION.finditer(document))
    preamble = document[: heads[0].start()] if heads else document
    sections = {}
    for i, head in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(document)
        sections[int(head.group(1))] = (head.group(2).strip(), document[head.end() : end])
    return preamble, sections


def _scope(match: re.Match[str], group: int, here: int | None) -> int | None:
    number = match.group(group)
    return int(number) if number else here


def parse_rules(preamble: str, sections: dict[int, tuple[str, str]]) -> Rules:
    rules = Rules()
    texts: list[tuple[int | None, str]] = [(None, preamble)]
    texts += [(number, body) for number, (_, body) in sections.items()]
    for here, text in texts:
        for m in _SCALE.finditer(text):
            if (where := _scope(m, 1, here)) is not None:
                rules.factor[where] = FACTORS[m.group(2).lower()]
                rules.sentences.setdefault(where, []).append(m.group(0))
        for m in _EXCLUDE.finditer(text):
            if (where := _scope(m, 1, here)) is not None:
                rules.exclude_reserve.add(where)
                rules.sentences.setdefault(where, []).append(m.group(0))
        for m in _MARK.finditer(text):
            where = _scope(m, 2, here)
            if where is not None and m.group(3).lower().startswith("retracted"):
                rules.retracted.setdefault(where, set()).add(m.group(1))
                rules.sentences.setdefault(where, []).append(m.group(0))
    return rules


def parse_table(body: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in a section body, keyed by the header."""
    lines = [line.strip() for line in body.splitlines() if line.strip().startswith("|")]
    if not lines:
        return []
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    header = cells[0]
    return [dict(zip(header, row, strict=False)) for row in cells[1:] if set(row) != {"---"}]


def _find_section(sections: dict[int, tuple[str, str]], place: str, kind: str) -> int | None:
    for number, (title, _) in sections.items():
        if title.endswith(f"{place} {kind}"):
            return number
    return None


def _value(
    family: str,
    subject: str,
    rows: list[dict[str, str]],
    number: int,
    rules: Rules,
    apply_rules: bool,
) -> tuple[float, str] | None:
    """The asked value and how it was read."""
    if family == "marks":
        dropped = rules.retracted.get(number, set()) if apply_rules else set()
        entries = [r for r in rows if r["Sensor"] == subject and r["Mark"] not in dropped]
        if not entries:
            return None
        latest = max(entries, key=lambda r: r["Date"])
        how = f"the latest entry for {subject} that counts is {latest['Date']}"
        return float(latest["Reading (kPa)"]), how
    row = next((r for r in rows if r["Item"] == subject), None)
    if row is None:
        return None
    if family == "scale":
        factor = rules.factor.get(number, 1) if apply_rules else 1
        return float(row["Unit price"]) * factor, f"listed price {row['Unit price']} x {factor}"
    stock, reserve = float(row["Stock"]), float(row["Reserve"])
    if apply_rules and number in rules.exclude_reserve:
        return stock + reserve, f"stock {row['Stock']} plus reserve {row['Reserve']}"
    return stock, f"stock {row['Stock']} as listed"


def parse_question(question: str) -> tuple[str, str, str] | None:
    """(family, item or sensor, place) of a question, or None for an unknown question."""
    for family, pattern in _QUESTIONS.items():
        if match := pattern.search(question):
            return family, match.group(1), match.group(2)
    return None


def solve(prompt: str, apply_rules: bool = True) -> Solution | None:
    """The option the report supports, or None when the prompt cannot be read."""
    parts = split_prompt(prompt)
    if parts is None:
        return None
    document, question, options = parts
    preamble, sections = parse_sections(document)
    asked = parse_question(question)
    if asked is None:
        return None
    family, subject, place = asked
    number = _find_section(sections, place, "station" if family == "marks" else "depot")
    if number is None:
        return None
    rules = parse_rules(preamble, sections)
    found = _value(family, subject, parse_table(sections[number][1]), number, rules, apply_rules)
    if found is None:
        return None
    value, how = found
    for letter, text in sorted(options.items()):
        option = _NUMBER.search(text)
        if option and abs(float(option.group(0)) - value) < 1e-6:
            stated = rules.sentences.get(number, []) if apply_rules else []
            note = f" The report says: {'; '.join(stated)}." if stated else ""
            rationale = f"Section {number} ({sections[number][0]}):{note} So, {how}: {text}."
            return Solution(letter, value, rationale)
    return None


def answer_message(prompt: str) -> str:
    """The expert's reply: a short rationale and the letter inside <answer></answer>."""
    solution = solve(prompt)
    if solution is None:
        return "I could not find the answer in the report. <answer>?</answer>"
    return f"{solution.rationale}\n<answer>{solution.letter}</answer>"
