"""Descriptions that identify an entity without naming it ("the city founded in 1523 and
located in Kemaria"), checked to match exactly one entity of the encyclopedia."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass

from longhorizon.domains.search.encyclopedia import Encyclopedia
from longhorizon.domains.search.entities import Entity
from longhorizon.domains.search.graph import near_duplicate
from longhorizon.domains.search.pages import join_names
from longhorizon.domains.search.schema import ATTRIBUTES, RELATIONS, format_value

MAX_FRAGMENTS = 3


@dataclass(frozen=True)
class Fragment:
    """One stated fact: its text, the entity it names (if any) and a test for other entities."""

    text: str
    anchor: str | None
    matches: Callable[[Entity], bool]


def _relates(relation: str, target: str) -> Callable[[Entity], bool]:
    """The test "this entity's `relation` is `target`"."""
    return lambda entity: entity.relations.get(relation) == target


def _attribute_fragments(entity: Entity) -> list[Fragment]:
    out = []
    for spec in ATTRIBUTES[entity.kind]:
        value = entity.attributes.get(spec.name)
        if value is not None:
            text = spec.describe.format(v=format_value(spec.name, value))
            same = lambda e, n=spec.name, v=value: e.attributes.get(n) == v  # noqa: E731
            out.append(Fragment(text, None, same))
    return out


def _relation_fragments(
    encyclopedia: Encyclopedia, entity: Entity, avoid: Collection[str]
) -> list[Fragment]:
    """Facts naming a linked entity, except entities to keep out of the text (the chain) and
    their near-duplicates, whose names would hint at them."""
    out = []
    avoid_titles = [encyclopedia.name(a) for a in avoid if a in encyclopedia.by_id]
    for relation, target in entity.relations.items():
        name = encyclopedia.name(target)
        if target in avoid or any(near_duplicate(name, t) for t in avoid_titles):
            continue
        text = RELATIONS[relation].participle.format(v=name)
        out.append(Fragment(text, target, _relates(relation, target)))
    return out


def count_matches(encyclopedia: Encyclopedia, kind: str, fragments: list[Fragment]) -> int:
    return sum(all(f.matches(e) for f in fragments) for e in encyclopedia.by_kind.get(kind, []))


def describe(
    encyclopedia: Encyclopedia,
    entity_id: str,
    rng: random.Random,
    avoid: Collection[str] = (),
) -> tuple[str, list[Fragment]] | None:
    """A description matching only this entity, or None when no short one exists.

    The first attribute (a year or a length) is always stated; more facts are added in random
    order until the description is unique.
    """
    entity = encyclopedia.by_id[entity_id]
    first, *rest = _attribute_fragments(entity)
    extra = rest + _relation_fragments(encyclopedia, entity, avoid)
    rng.shuffle(extra)
    chosen = [first]
    for fragment in [None, *extra]:
        if fragment is not None:
            chosen.append(fragment)
        if count_matches(encyclopedia, entity.kind, chosen) == 1:
            text = f"the {entity.kind} " + join_names([f.text for f in chosen])
            return text, chosen
        if len(chosen) >= MAX_FRAGMENTS:
            break
    return None
