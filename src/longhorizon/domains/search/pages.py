"""One page per entity: its attributes in varied sentences, its links as names in the text.

Each relation is mentioned on both pages it joins (a company's page names its founder; the
founder's page names the company), as on a real wiki, so a walk can take a hop in either
direction. A page's links are the ids of the entities it mentions, in mention order.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence

from longhorizon.domains.search.entities import Entity
from longhorizon.domains.search.schema import format_value
from longhorizon.tools.corpus import Document

# (relation whose target is this page, sentence forms); {n}: page name, {list}: the subjects.
_INVERSE_SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "city": {
        "capital": ("{n} is the capital of {list}.", "It serves as the capital of {list}."),
        "headquarters": (
            "Companies headquartered in {n} include {list}.",
            "{n} is home to the headquarters of {list}.",
        ),
        "location": ("Universities in {n}: {list}.", "The city hosts {list}."),
        "birthplace": ("People born in {n} include {list}.", "Notable natives of {n}: {list}."),
        "setting": ("{n} is the setting of {list}.", "Books set in {n} include {list}."),
        "origin": ("{n} is the hometown of {list}.", "Bands formed in {n} include {list}."),
        "mouth": ("Rivers reaching the sea at {n}: {list}.", "{n} lies at the mouth of {list}."),
    },
    "country": {
        "located_in": ("Cities in {n} include {list}.", "Major cities of {n}: {list}."),
        "flows_through": (
            "Rivers flowing through {n} include {list}.",
            "{n} is crossed by {list}.",
        ),
    },
    "university": {
        "alma_mater": (
            "Alumni of {n} include {list}.",
            "Notable people who studied at {n} include {list}.",
        ),
    },
    "person": {
        "founder": ("{s} founded {list}.", "{s} is the founder of {list}."),
        "author": ("{s} wrote {list}.", "{s} is the author of {list}."),
        "lead_singer": ("{s} is the lead singer of {list}.", "{s} fronts {list}."),
    },
}

# Forward facts: sentence groups, each a tuple of alternative forms over the page's fields.
_FORWARD_SENTENCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "city": (
        (
            "{n} is a city in {located_in}, founded in {founded}.",
            "Founded in {founded}, {n} is a city in {located_in}.",
            "{n} is a city of {located_in}. It was founded in {founded}.",
        ),
        (
            "It has a population of {population}.",
            "The city has {population} inhabitants.",
            "About {population} people live in {n}.",
        ),
    ),
    "country": (
        (
            "{n} is a country founded in {founded}.",
            "Founded in {founded}, {n} is a country.",
            "{n} is a sovereign country established in {founded}.",
        ),
        ("It has a population of {population}.", "{n} has {population} inhabitants."),
        ("Its capital is {capital}.", "The capital of {n} is {capital}."),
    ),
    "university": (
        (
            "{n} is a university in {location}, founded in {founded}.",
            "Founded in {founded}, {n} is a university located in {location}.",
            "{n} was founded in {founded}. Its campus is in {location}.",
        ),
    ),
    "person": (
        (
            "{n} (born {born}) is a {occupation} from {birthplace}.",
            "{n} is a {occupation}, born in {birthplace} in {born}.",
            "Born in {born} in {birthplace}, {n} is a {occupation}.",
        ),
        ("{s} studied at {alma_mater}.", "{s} graduated from {alma_mater}."),
    ),
    "company": (
        (
            "{n} is a {industry} company founded in {founded} by {founder}.",
            "Founded by {founder} in {founded}, {n} is a {industry} company.",
            "{n} is a {industry} company. It was established in {founded}; "
            "its founder is {founder}.",
        ),
        (
            "It is headquartered in {headquarters}.",
            "The company's headquarters are in {headquarters}.",
            "{n} has its head office in {headquarters}.",
        ),
        ("It employs about {employees} people.", "The company has around {employees} employees."),
    ),
    "river": (
        (
            "The {n} is a river of {flows_through}, {length_km} km long.",
            "{n} flows through {flows_through} for {length_km} km.",
            "{n} is a {length_km} km long river in {flows_through}.",
        ),
        (
            "It reaches the sea at {mouth}.",
            "Its mouth is at {mouth}.",
            "The river ends at {mouth}.",
        ),
    ),
    "book": (
        (
            "{n} is a {genre} novel by {author}, published in {published}.",
            "Published in {published}, {n} is a {genre} novel written by {author}.",
            "{author} wrote {n}, a {genre} novel first published in {published}.",
        ),
        ("The story is set in {setting}.", "It takes place in {setting}."),
    ),
    "band": (
        (
            "{n} is a {genre} band formed in {formed} in {origin}.",
            "Formed in {origin} in {formed}, {n} is a {genre} band.",
            "{n} is a {genre} band from {origin}, formed in {formed}.",
        ),
        ("The band is fronted by {lead_singer}.", "Its lead singer is {lead_singer}."),
    ),
}


def join_names(names: Sequence[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


_A_VOWEL = re.compile(r"\b([Aa]) (?=[aeiou])")


def fix_articles(text: str) -> str:
    """'a engineer' -> 'an engineer' (values are lower-case words; names never follow 'a')."""
    return _A_VOWEL.sub(lambda m: m.group(1) + "n ", text)


Subjects = Callable[[str, str], list[str]]  # (relation, target id) -> subject ids


class PageWriter:
    """Renders entity pages; one seeded generator picks every sentence form."""

    def __init__(self, by_id: Mapping[str, Entity], subjects: Subjects, rng: random.Random) -> None:
        self.by_id = by_id
        self.subjects = subjects
        self.rng = rng

    def render(self, entity: Entity) -> Document:
        links: list[str] = []

        def mention(entity_id: str) -> str:
            if entity_id not in links:
                links.append(entity_id)
            return self.by_id[entity_id].name

        fields = {"n": entity.name, "s": entity.name.split()[-1]}
        fields |= {k: format_value(k, v) for k, v in entity.attributes.items()}
        fields |= {rel: mention(target) for rel, target in entity.relations.items()}
        intro = [
            self.rng.choice(forms).format(**fields) for forms in _FORWARD_SENTENCES[entity.kind]
        ]
        connections = []
        for relation, forms in _INVERSE_SENTENCES.get(entity.kind, {}).items():
            ids = self.subjects(relation, entity.id)
            if ids:
                names = join_names([mention(i) for i in ids])
                connections.append(self.rng.choice(forms).format(list=names, **fields))
        paragraphs = [" ".join(intro), " ".join(connections)]
        text = fix_articles("\n\n".join(p for p in paragraphs if p))
        return Document(id=entity.id, title=entity.name, text=text, links=links)
