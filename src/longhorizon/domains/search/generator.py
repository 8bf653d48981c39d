"""Seeded generation of the encyclopedia's entities: kinds, attributes and relations.

Kinds are created in schema order so every relation points at an entity that already exists;
years are kept plausible (a company is founded after its founder is born) because a question
generator built on implausible facts teaches implausible reasoning.
"""

from __future__ import annotations

import random

from longhorizon.domains.search.entities import EncyclopediaConfig, Entity, slug
from longhorizon.domains.search.names import ADJECTIVES, COMPANY_SUFFIXES, NOUNS, Namer
from longhorizon.domains.search.schema import KINDS

_OCCUPATIONS = (
    "painter", "engineer", "physicist", "novelist", "architect", "economist", "composer",
    "chemist", "historian", "diplomat", "sculptor", "mathematician", "singer", "entrepreneur",
)  # fmt: skip
_INDUSTRIES = (
    "software", "shipping", "mining", "textile", "aerospace", "banking", "publishing",
    "pharmaceutical", "energy", "retail", "food", "automotive",
)  # fmt: skip
_BOOK_GENRES = ("mystery", "historical", "science fiction", "romance", "adventure", "crime")
_MUSIC_GENRES = ("rock", "jazz", "folk", "electronic", "punk", "soul", "metal", "pop")
_COUNTRY_ENDINGS = ("ia", "land", "ora", "stan", "ar", "ene")
_GIVEN_NAMES = 80


def kind_counts(config: EncyclopediaConfig) -> dict[str, int]:
    """Entities per kind: shares of n_entities, at least 2 countries, persons take the rest."""
    total = sum(config.shares.get(k, 0.0) for k in KINDS) or 1.0
    counts = {
        k: max(1, round(config.n_entities * config.shares.get(k, 0.0) / total)) for k in KINDS
    }
    counts["country"] = max(2, counts["country"])
    others = sum(v for k, v in counts.items() if k != "person")
    counts["person"] = max(1, config.n_entities - others)
    return counts


class _Builder:
    """Mutable state of one generation run; every random choice goes through self.rng."""

    def __init__(self, config: EncyclopediaConfig) -> None:
        self.config = config
        self.rng = random.Random(f"encyclopedia:{config.seed}")
        self.namer = Namer(self.rng)
        self.entities: list[Entity] = []
        self.by_kind: dict[str, list[Entity]] = {k: [] for k in KINDS}
        self.cities_of: dict[str, list[Entity]] = {}
        self.given_names = [self.namer.word() for _ in range(_GIVEN_NAMES)]

    # ---- helpers --------------------------------------------------------------------------
    def add(
        self, kind: str, name: str, attributes: dict[str, int | str], relations: dict[str, str]
    ) -> Entity:
        entity = Entity(slug(name), kind, name, attributes, relations)
        self.entities.append(entity)
        self.by_kind[kind].append(entity)
        return entity

    def year(self, lo: int, hi: int | None = None) -> int:
        """A year in [lo, hi] clipped to the configured range (hi defaults to its end)."""
        hi = self.config.max_year if hi is None else min(hi, self.config.max_year)
        lo = max(lo, self.config.min_year)
        return self.rng.randint(min(lo, hi), hi)

    def pick(self, kind: str) -> Entity:
        return self.rng.choice(self.by_kind[kind])

    def derived(self) -> bool:
        """Whether to derive this name from a related entity's (a deliberate near-duplicate)."""
        return self.rng.random() < self.config.near_duplicate_rate

    # ---- kinds ----------------------------------------------------------------------------
    def countries(self, n: int) -> None:
        end = self.config.max_year
        for _ in range(n):
            name = self.namer.unique(lambda: self.namer.word() + self.rng.choice(_COUNTRY_ENDINGS))
            population = int(10 ** self.rng.uniform(5.5, 8.2))
            self.add(
                "country", name, {"founded": self.year(0, end - 60), "population": population}, {}
            )

    def cities(self, n: int) -> None:
        countries = self.by_kind["country"]
        for i in range(n):
            # The first cities go round-robin so that every country has at least one city.
            country = countries[i] if i < len(countries) else self.rng.choice(countries)
            name = self.namer.unique(self.namer.word)
            attributes: dict[str, int | str] = {
                "founded": self.year(0, self.config.max_year - 30),
                "population": int(10 ** self.rng.uniform(3.8, 6.9)),
            }
            city = self.add("city", name, attributes, {"located_in": country.id})
            self.cities_of.setdefault(country.id, []).append(city)
        for country in countries:
            country.relations["capital"] = self.cities_of[country.id][0].id

    def universities(self, n: int) -> None:
        for _ in range(n):
            city = self.pick("city")

            def make(city: Entity = city) -> str:
                if self.derived():
                    return f"University of {city.name}"
                form = self.rng.choice(
                    ("{} University", "{} Institute of Technology", "{} College")
                )
                return form.format(self.namer.word())

            founded = self.year(self.config.min_year + 100, self.config.max_year - 20)
            self.add(
                "university", self.namer.unique(make), {"founded": founded}, {"location": city.id}
            )

    def persons(self, n: int) -> None:
        end = self.config.max_year
        for _ in range(n):
            name = self.namer.unique(
                lambda: f"{self.rng.choice(self.given_names)} {self.namer.word()}"
            )
            attributes: dict[str, int | str] = {
                "born": self.year(end - 170, end - 20),
                "occupation": self.rng.choice(_OCCUPATIONS),
            }
            relations = {
                "birthplace": self.pick("city").id,
                "alma_mater": self.pick("university").id,
            }
            self.add("person", name, attributes, relations)

    def companies(self, n: int) -> None:
        for _ in range(n):
            founder = self.pick("person")
            surname = founder.name.split()[-1]

            def make(surname: str = surname) -> str:
                base = surname if self.derived() else self.namer.word()
                return f"{base} {self.rng.choice(COMPANY_SUFFIXES)}"

            attributes: dict[str, int | str] = {
                "founded": self.year(int(founder.attributes["born"]) + 20),
                "industry": self.rng.choice(_INDUSTRIES),
                "employees": int(10 ** self.rng.uniform(1.5, 5.2)),
            }
            relations = {"founder": founder.id, "headquarters": self.pick("city").id}
            self.add("company", self.namer.unique(make), attributes, relations)

    def rivers(self, n: int) -> None:
        for _ in range(n):
            country = self.pick("country")
            mouth = self.rng.choice(self.cities_of[country.id])

            def make(mouth: Entity = mouth) -> str:
                return f"{mouth.name if self.derived() else self.namer.word()} River"

            attributes: dict[str, int | str] = {"length_km": self.rng.randint(40, 3200)}
            relations = {"flows_through": country.id, "mouth": mouth.id}
            self.add("river", self.namer.unique(make), attributes, relations)

    def books(self, n: int) -> None:
        def make() -> str:
            if self.rng.random() < 0.7:
                return f"The {self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}"
            return f"{self.rng.choice(NOUNS)}s of {self.namer.word()}"

        for _ in range(n):
            author = self.pick("person")
            attributes: dict[str, int | str] = {
                "published": self.year(int(author.attributes["born"]) + 18),
                "genre": self.rng.choice(_BOOK_GENRES),
            }
            relations = {"author": author.id, "setting": self.pick("city").id}
            self.add("book", self.namer.unique(make), attributes, relations)

    def bands(self, n: int) -> None:
        def make() -> str:
            if self.rng.random() < 0.5:
                return f"The {self.namer.word()}s"
            return f"{self.rng.choice(ADJECTIVES)} {self.rng.choice(NOUNS)}s"

        for _ in range(n):
            singer = self.pick("person")
            attributes: dict[str, int | str] = {
                "formed": self.year(int(singer.attributes["born"]) + 15),
                "genre": self.rng.choice(_MUSIC_GENRES),
            }
            relations = {"origin": self.pick("city").id, "lead_singer": singer.id}
            self.add("band", self.namer.unique(make), attributes, relations)


def generate_entities(config: EncyclopediaConfig) -> list[Entity]:
    """All entities of the configured encyclopedia, in kind order; deterministic in the seed."""
    builder = _Builder(config)
    make = {
        "country": builder.countries,
        "city": builder.cities,
        "university": builder.universities,
        "person": builder.persons,
        "company": builder.companies,
        "river": builder.rivers,
        "book": builder.books,
        "band": builder.bands,
    }
    for kind, count in kind_counts(config).items():
        make[kind](count)
    return builder.entities
