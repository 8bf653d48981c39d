"""Pronounceable, seeded names from syllable pools, unique unless derived on purpose.

Every generated word is used by one entity only, so two names share a word only when a
generator derives one name from another on purpose ("Varo" -> "Varo River"): those are the
near-duplicates the random walk must learn to skip.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_ONSETS = (
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
    "br", "dr", "gr", "kr", "tr", "st", "sh", "th", "ch", "fl", "pl", "",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "io", "ou", "ae")
_CODAS = ("", "", "", "", "n", "r", "l", "s", "m", "k", "th", "nd", "rn")

ADJECTIVES = (
    "Silent", "Broken", "Golden", "Hidden", "Last", "Distant", "Crimson", "Winter", "Hollow",
    "Endless", "Quiet", "Burning", "Silver", "Forgotten", "Northern", "Iron", "Glass", "Paper",
    "Bitter", "Restless", "Wandering", "Sleeping", "Scarlet", "Pale", "Lost", "Second",
    "Little", "Long", "Dark", "Bright", "Salt", "Velvet",
)  # fmt: skip
NOUNS = (
    "Garden", "Harbour", "Mirror", "Orchard", "Lantern", "Tower", "Island", "Letter", "Road",
    "Bridge", "Season", "Kingdom", "Shore", "Clock", "Field", "House", "Sea", "Mountain",
    "Empire", "Voyage", "Daughter", "Machine", "Forest", "Map", "Compass", "Song", "Crown",
    "Archive", "Engine", "Feather", "Meadow", "Signal",
)  # fmt: skip
COMPANY_SUFFIXES = ("Industries", "Systems", "Works", "Group", "Labs", "Holdings", "Trading")
MAX_TRIES = 10_000


class NamesExhausted(RuntimeError):
    """The name space is exhausted (only for absurdly large configurations)."""


class Namer:
    """Draws fresh words and unique full names from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._words: set[str] = set()  # membership only: never iterated, so order-free
        self._names: set[str] = set()

    def _syllable(self) -> str:
        return self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)

    def word(self) -> str:
        """A fresh capitalised word of 2-3 syllables that no other name uses."""
        for _ in range(MAX_TRIES):
            n = self.rng.choice((2, 2, 2, 3))
            word = "".join(self._syllable() for _ in range(n))
            if 4 <= len(word) <= 10 and word not in self._words:
                self._words.add(word)
                return word.capitalize()
        raise NamesExhausted("no fresh word found; the syllable pools are exhausted")

    def claim(self, name: str) -> bool:
        """Reserve a full name; False when it is already taken."""
        key = name.lower()
        if key in self._names:
            return False
        self._names.add(key)
        return True

    def unique(self, make: Callable[[], str]) -> str:
        """The first name `make` produces that is not taken yet."""
        for _ in range(MAX_TRIES):
            name = make()
            if self.claim(name):
                return name
        raise NamesExhausted("no unique name found")
