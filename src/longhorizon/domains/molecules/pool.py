"""The molecule pool: drug-like molecules enumerated from fragments written here, seeded.

A molecule is a scaffold with two or three slots filled with substituents: aryl slots take
any of `ARYL` (attached by their first atom), amine slots any of `AMINE`. Draws are seeded
(`random.Random(f"pool:{seed}")`), sanitised and canonicalised by RDKit and deduplicated, so
the same (size, seed) gives the same pool. No benchmark data is read: the tests check that
the pool shares no molecule with MolBench (ms-1 and ms-2, compared as canonical SMILES).

The pool is split by a hash of each canonical SMILES: `HELDOUT_BUCKETS` of 10 buckets are
held-out molecules, which only held-out tasks use; synthesis draws from the rest, so no
held-out task shows a molecule a training task showed.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

from longhorizon.tools.chem import ChemError, canonical, properties

__all__ = ["AMINE", "ARYL", "SCAFFOLDS", "Pool", "build_pool", "is_heldout"]

# Ring-closure labels %91 and %92 are used by substituents only; scaffolds use 1-8 and %81,
# so a substituent written inside a scaffold's open ring never closes the scaffold's ring.
ARYL: tuple[str, ...] = (
    "[H]", "C", "CC", "C(C)C", "F", "Cl", "Br", "OC", "OCC", "C(F)(F)F", "OC(F)(F)F", "C#N",
    "O", "N", "N(C)C", "CO", "CN", "C(=O)O", "C(=O)N", "C(=O)OC", "NC(C)=O", "S(=O)(=O)N",
    "S(C)(=O)=O", "N%91CCOCC%91", "N%91CCCC%91", "N%91CCN(C)CC%91", "C%91CC%91",
    "c%91ccccc%91", "c%91ccncc%91", "c%91ccco%91", "c%91cccs%91", "OCc%91ccccc%91",
)  # fmt: skip
AMINE: tuple[str, ...] = (
    "[H]", "C", "CC", "C(C)C", "CCO", "CCOC", "CCN(C)C", "C%92CC%92", "C%92CCCC%92",
    "Cc%92ccccc%92", "c%92ccccc%92", "c%92ccccn%92", "CC(=O)O", "CCc%92ccccc%92",
)  # fmt: skip
# {A}: an aryl slot, {N}: an amine slot.
SCAFFOLDS: tuple[str, ...] = (
    "c1cc({A})ccc1{A}",
    "O=C(N{N})c1ccc({A})cc1",
    "O=C(N{N})c1cccc({A})c1{A}",
    "O=S(=O)(N{N})c1ccc({A})cc1",
    "c1cc({A})c2[nH]c({A})cc2c1",
    "c1nc({A})ccc1{A}",
    "Cc1nc({A})sc1C(=O)N{N}",
    "c1cc({A})ccc1N%81CCN(CC%81){N}",
    "c1cc({A})c2ncnc(N{N})c2c1",
    "O=C(Nc1ccc({A})cc1){A}",
    "c1cc({A})ccc1-c1nc({A})no1",
    "O=C(C{N})N1CCC(CC1){A}",
    "c1ccc2nc({A})c(N{N})nc2c1",
    "Cn1cc({A})c(=O)n(C{N})c1=O",
)
HELDOUT_BUCKETS = 1  # of 10: a tenth of the pool is held out
MAX_MW = 600.0  # drop the rare oversized draw


def is_heldout(smiles: str) -> bool:
    """Whether a canonical SMILES falls in the held-out buckets (a fixed hash, no seed)."""
    digest = hashlib.sha256(smiles.encode()).digest()
    return digest[0] % 10 < HELDOUT_BUCKETS


@dataclass(frozen=True)
class Pool:
    """Canonical SMILES with their scaffold index; `train` and `heldout` split them."""

    smiles: tuple[str, ...]
    scaffold: dict[str, int]
    seed: int

    @property
    def train(self) -> tuple[str, ...]:
        return tuple(s for s in self.smiles if not is_heldout(s))

    @property
    def heldout(self) -> tuple[str, ...]:
        return tuple(s for s in self.smiles if is_heldout(s))

    def part(self, heldout: bool) -> tuple[str, ...]:
        return self.heldout if heldout else self.train


def _fill(scaffold: str, rng: random.Random) -> str:
    out = scaffold
    while "{A}" in out or "{N}" in out:
        slot = (
            "{A}"
            if out.find("{A}") != -1
            and (out.find("{N}") == -1 or out.find("{A}") < out.find("{N}"))
            else "{N}"
        )
        out = out.replace(slot, rng.choice(ARYL if slot == "{A}" else AMINE), 1)
    return out


@lru_cache(maxsize=4)
def build_pool(size: int = 3000, seed: int = 0) -> Pool:
    """`size` distinct valid molecules (fewer only if the draws run out), seeded."""
    rng = random.Random(f"pool:{seed}")
    found: dict[str, int] = {}
    for _ in range(size * 20):
        if len(found) >= size:
            break
        index = rng.randrange(len(SCAFFOLDS))
        try:
            smiles = canonical(_fill(SCAFFOLDS[index], rng))
        except ChemError:
            continue
        if smiles not in found and properties(smiles)["MW"] <= MAX_MW:
            found[smiles] = index
    return Pool(smiles=tuple(found), scaffold=found, seed=seed)
