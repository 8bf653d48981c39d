"""The encyclopedia's schema: entity kinds, scalar attributes, relations and how to phrase them.

Every relation is single-valued on its subject (a company has one founder), so a forward hop
("the founder of X") always names exactly one entity. An inverse hop ("the company founded by
X") names one entity only when X has exactly one such subject; tasks.py checks that.
"""

from __future__ import annotations

from dataclasses import dataclass

# Order matters: generation creates kinds in this order, so relation targets already exist.
KINDS: tuple[str, ...] = (
    "country",
    "city",
    "university",
    "person",
    "company",
    "river",
    "book",
    "band",
)

INVERSE = "~"  # an edge label "~founder" means: the target page's founder is the source page


@dataclass(frozen=True)
class AttributeSpec:
    """A scalar attribute: how a description states it and how a question asks for it."""

    name: str
    describe: str  # participle fragment for descriptions, "{v}" is the formatted value
    questions: tuple[str, ...] = ()  # "{x}" is the description of the entity; empty: not asked


@dataclass(frozen=True)
class RelationSpec:
    """A link-valued attribute subject -> target, phrased in both directions."""

    name: str
    subject: str
    target: str
    forward: str  # the target described through the subject: "the founder of {x}"
    inverse: str  # the subject described through the target: "the company founded by {x}"
    participle: str  # the subject described by naming the target: "founded by {v}"


def _year(verb: str) -> AttributeSpec:
    return AttributeSpec(
        verb,
        f"{verb} in {{v}}",
        (f"In what year was {{x}} {verb}?", f"{{X}} was {verb} in what year?"),
    )


_POPULATION = AttributeSpec(
    "population",
    "with a population of {v}",
    ("What is the population of {x}?", "How many people live in {x}?"),
)

ATTRIBUTES: dict[str, tuple[AttributeSpec, ...]] = {
    "country": (_year("founded"), _POPULATION),
    "city": (_year("founded"), _POPULATION),
    "university": (_year("founded"),),
    "person": (_year("born"), AttributeSpec("occupation", "working as a {v}")),
    "company": (_year("founded"), AttributeSpec("industry", "active in the {v} industry")),
    "river": (
        AttributeSpec(
            "length_km",
            "{v} km long",
            ("How long is {x}, in kilometres?", "{X} is how many kilometres long?"),
        ),
    ),
    "book": (_year("published"), AttributeSpec("genre", "in the {v} genre")),
    "band": (_year("formed"), AttributeSpec("genre", "playing {v} music")),
}

NAME_QUESTIONS: tuple[str, ...] = ("What is the name of {x}?", "Name {x}.")

_RELATIONS: tuple[RelationSpec, ...] = (
    RelationSpec(
        "located_in",
        "city",
        "country",
        "the country in which {x} lies",
        "the city located in {x}",
        "located in {v}",
    ),
    RelationSpec(
        "capital",
        "country",
        "city",
        "the capital of {x}",
        "the country whose capital is {x}",
        "whose capital is {v}",
    ),
    RelationSpec(
        "location",
        "university",
        "city",
        "the city that is home to {x}",
        "the university located in {x}",
        "based in {v}",
    ),
    RelationSpec(
        "birthplace",
        "person",
        "city",
        "the birthplace of {x}",
        "the person born in {x}",
        "a native of {v}",
    ),
    RelationSpec(
        "alma_mater",
        "person",
        "university",
        "the university attended by {x}",
        "the person who studied at {x}",
        "educated at {v}",
    ),
    RelationSpec(
        "founder",
        "company",
        "person",
        "the founder of {x}",
        "the company founded by {x}",
        "founded by {v}",
    ),
    RelationSpec(
        "headquarters",
        "company",
        "city",
        "the city where {x} is headquartered",
        "the company headquartered in {x}",
        "headquartered in {v}",
    ),
    RelationSpec(
        "flows_through",
        "river",
        "country",
        "the country through which {x} flows",
        "the river that flows through {x}",
        "flowing through {v}",
    ),
    RelationSpec(
        "mouth",
        "river",
        "city",
        "the city at the mouth of {x}",
        "the river that reaches the sea at {x}",
        "reaching the sea at {v}",
    ),
    RelationSpec(
        "author",
        "book",
        "person",
        "the author of {x}",
        "the book written by {x}",
        "written by {v}",
    ),
    RelationSpec(
        "setting",
        "book",
        "city",
        "the city in which {x} is set",
        "the book set in {x}",
        "set in {v}",
    ),
    RelationSpec(
        "origin",
        "band",
        "city",
        "the hometown of {x}",
        "the band formed in {x}",
        "originating in {v}",
    ),
    RelationSpec(
        "lead_singer",
        "band",
        "person",
        "the lead singer of {x}",
        "the band fronted by {x}",
        "fronted by {v}",
    ),
)

RELATIONS: dict[str, RelationSpec] = {r.name: r for r in _RELATIONS}

# Values printed with thousands separators on pages (the exact-match normaliser drops commas).
_GROUPED = frozenset({"population", "employees"})


def format_value(attribute: str, value: int | str) -> str:
    """An attribute value as pages print it, so answers and page text agree."""
    if isinstance(value, int) and attribute in _GROUPED:
        return f"{value:,}"
    return str(value)


def split_label(label: str) -> tuple[str, bool]:
    """(relation name, is_inverse) of an edge label such as "founder" or "~founder"."""
    if label.startswith(INVERSE):
        return label[len(INVERSE) :], True
    return label, False


def hop_phrase(label: str, description: str) -> str:
    """Describe the next entity of a chain through the description of the current one."""
    name, inverse = split_label(label)
    spec = RELATIONS[name]
    return (spec.inverse if inverse else spec.forward).format(x=description)


def hop_kind(label: str) -> str:
    """The kind of entity a hop with this label leads to."""
    name, inverse = split_label(label)
    spec = RELATIONS[name]
    return spec.subject if inverse else spec.target
