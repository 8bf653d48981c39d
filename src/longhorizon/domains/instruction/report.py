"""Seeded synthetic reports: the documents of the long-context tasks.

A report has reading notes and about ten numbered sections: prose (with look-alike facts:
launch prices, shipment counts, recalibrations), depot tables (code, item, unit price,
stock, reserve) and station logs (date, sensor, reading, mark). The same item names recur
across depots and the same sensor ids across stations, so every fact has look-alikes.
Local rules (units, reserve stock, marked entries) are stated as notes, either in the
reading notes with a section number or inside a section as "this section".
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

ITEMS: tuple[str, ...] = (
    "copper valve", "brass hinge", "steel bracket", "rubber gasket", "oak pallet", "glass jar",
    "linen sack", "clay brick", "wool blanket", "tin lantern", "cedar crate", "iron anchor",
    "nylon rope", "canvas tarp", "ceramic tile", "zinc bucket", "pine plank", "cork float",
    "felt pad", "slate shingle", "bamboo pole", "jute twine", "lead weight", "hemp net",
)  # fmt: skip
SYLLABLES: tuple[str, ...] = (
    "kor", "van", "mil", "bro", "tes", "ald", "ren", "hal", "dun", "ber", "lin", "ast",
    "mor", "quel", "sid", "fen", "gar", "tor", "wel", "nor",
)  # fmt: skip
SUFFIXES: tuple[str, ...] = ("holm", "ford", "wick", "by", "stead", "mere", "gate", "dale")
MONTHS: tuple[str, ...] = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
PROSE_TITLES: tuple[str, ...] = (
    "Staff and training", "Transport and routes", "Safety review", "Outlook", "Community work",
    "Energy use",
)  # fmt: skip
SCALE_WORDS: dict[int, str] = {10: "tens", 100: "hundreds", 1000: "thousands"}
RETRACTED = "are retracted and must be ignored"
VALID = "are estimates and remain valid"
DEPOT_HEADER = ("Code", "Item", "Unit price", "Stock", "Reserve")
STATION_HEADER = ("Date", "Sensor", "Reading (kPa)", "Mark")

# Prose sentences; fields: {org} {place} {item} {n} {m} {year} {month} {sensor} {price}.
PROSE: tuple[str, ...] = (
    "The {place} team handled {n} shipments in {month}.",
    "In {year} the launch price of the {item} was {price} credits.",
    "Sensor {sensor} was recalibrated in {month} after a routine check.",
    "Staff completed {m} safety drills over the year.",
    "Orders for the {item} rose by {m} percent compared with the previous year.",
    "The cooperative continued to invest in training and equipment.",
    "A review in {month} found that delivery times had improved.",
    "The {place} site added {m} new shelving units during the spring.",
    "The board of {org} met {m} times to review plans and budgets.",
    "Members raised questions about storage costs at the annual meeting.",
    "Average waiting time at the loading bay fell to {m} minutes.",
    "The {item} remained one of the most requested goods at {place}.",
    "Volunteers helped with the inventory count in {month}.",
    "Energy use per pallet moved fell slightly for the third year running.",
    "Two routes were merged in {month} to save fuel.",
    "The {place} site reported {m} minor incidents and no serious ones.",
    "A supplier audit in {month} covered {m} partner firms.",
    "New labels were introduced so that codes are easier to read.",
    "Demand for the {item} peaked in {month}.",
    "Most repairs were carried out by staff from the {place} site.",
)  # fmt: skip


@dataclass
class DepotRow:
    code: str
    item: str
    price: int
    stock: int
    reserve: int

    def cells(self) -> tuple[str, ...]:
        return (self.code, self.item, str(self.price), str(self.stock), str(self.reserve))


@dataclass
class Reading:
    date: str
    sensor: str
    value: float
    mark: str = ""

    def cells(self) -> tuple[str, ...]:
        return (self.date, self.sensor, f"{self.value:.1f}", self.mark)


@dataclass
class Section:
    number: int
    title: str
    kind: str  # "prose", "depot" or "station"
    place: str | None = None
    before: list[str] = field(default_factory=list)  # paragraphs before the table
    after: list[str] = field(default_factory=list)
    depot_rows: list[DepotRow] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self) -> list[str]:
        header: tuple[str, ...]
        rows: list[tuple[str, ...]]
        if self.kind == "depot":
            header, rows = DEPOT_HEADER, [r.cells() for r in self.depot_rows]
        elif self.kind == "station":
            header, rows = STATION_HEADER, [r.cells() for r in self.readings]
        else:
            return []
        lines = [header, tuple("---" for _ in header), *rows]
        return ["| " + " | ".join(cells) + " |" for cells in lines]

    def text(self) -> str:
        parts = [f"Section {self.number}. {self.title}", *self.before]
        table = self.table()
        if table:
            parts.append("\n".join(table))
        parts += self.after + [f"Note: {note}" for note in self.notes]
        return "\n\n".join(parts)


@dataclass
class Report:
    title: str
    org: str
    notes: list[str]
    sections: list[Section]

    def section(self, number: int) -> Section:
        return next(s for s in self.sections if s.number == number)

    def text(self) -> str:
        notes = "\n".join(f"{i}. {note}" for i, note in enumerate(self.notes, start=1))
        body = "\n\n".join(s.text() for s in self.sections)
        return f"{self.title}\n\nReading notes\n{notes}\n\n{body}"


def place_name(rng: random.Random) -> str:
    first, second = rng.sample(SYLLABLES, 2)
    return (first + second + rng.choice(SUFFIXES)).capitalize()


def distinct_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    while len(names) < count:
        name = place_name(rng)
        if name not in names:
            names.append(name)
    return names


def prose_paragraph(rng: random.Random, org: str, places: list[str], sensors: list[str]) -> str:
    sentences = []
    for template in rng.sample(PROSE, rng.randint(5, 8)):
        sentences.append(
            template.format(
                org=org,
                place=rng.choice(places),
                item=rng.choice(ITEMS),
                n=rng.randint(120, 4000),
                m=rng.randint(2, 40),
                year=rng.randint(2009, 2021),
                month=rng.choice(MONTHS),
                sensor=rng.choice(sensors),
                price=rng.randint(20, 900),
            )
        )
    return " ".join(sentences)


def depot_rows(rng: random.Random, items: list[str]) -> list[DepotRow]:
    letter = rng.choice("KLMNPRST")
    codes = rng.sample(range(100, 1000), len(items))
    return [
        DepotRow(
            f"{letter}-{code}",
            item,
            rng.randint(20, 900),
            rng.randint(100, 900),
            rng.randint(10, 90),
        )
        for code, item in zip(codes, items, strict=True)
    ]


def readings(rng: random.Random, sensors: list[str], year: int) -> list[Reading]:
    readings = []
    for sensor in sensors:
        days = sorted(rng.sample(range(1, 365), rng.randint(2, 4)))
        for day in days:
            month, mday = divmod(day - 1, 31)
            date = f"{year}-{min(month + 1, 12):02d}-{mday % 28 + 1:02d}"
            readings.append(Reading(date, sensor, round(rng.uniform(20.0, 95.0), 1)))
    # Unique dates per sensor keep "most recent" well defined.
    unique: dict[tuple[str, str], Reading] = {(r.sensor, r.date): r for r in readings}
    return sorted(unique.values(), key=lambda r: (r.date, r.sensor))


def pick(rng: random.Random) -> list[str]:
    """The items a depot stocks: 12 of the 24, so any two depots share several."""
    return rng.sample(ITEMS, 12)


@dataclass
class Skeleton:
    """A report before family-specific rules and edits."""

    report: Report
    depots: list[Section]
    stations: list[Section]
    sensors: list[str]
    year: int


def skeleton(rng: random.Random) -> Skeleton:
    """A report with three depots, two stations and prose sections, in shuffled order."""
    org = place_name(rng) + " Cooperative"
    year = rng.randint(2015, 2024)
    names = distinct_names(rng, 5)
    sensors = [f"{rng.choice('TPHQ')}-{n}" for n in rng.sample(range(10, 99), 6)]
    depots = [
        Section(0, f"Price list: {n} depot", "depot", n, depot_rows=depot_rows(rng, pick(rng)))
        for n in names[:3]
    ]
    stations = [
        Section(0, f"Sensor log: {n} station", "station", n, readings=readings(rng, sensors, year))
        for n in names[3:]
    ]
    prose = [Section(0, t, "prose") for t in rng.sample(PROSE_TITLES, 4)]
    body = depots + stations + prose
    rng.shuffle(body)
    sections = [Section(0, "Overview", "prose"), *body]
    for number, section in enumerate(sections, start=1):
        section.number = number
        count = 4 if section.kind == "prose" else 2
        section.before = [prose_paragraph(rng, org, names, sensors) for _ in range(count)]
        if section.kind != "prose":
            section.after = [prose_paragraph(rng, org, names, sensors)]
    title = f"{org}: annual operations report {year}"
    report = Report(title, org, [], sections)
    return Skeleton(report, depots, stations, sensors, year)
