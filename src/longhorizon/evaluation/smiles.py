"""SMILES comparison by RDKit canonicalisation: one molecule written two ways compares equal.

Canonical SMILES keep stereochemistry and charges (RDKit's isomeric default), so enantiomers
and different salts stay different. An empty, unparsable or chemically invalid SMILES has no
canonical form and never matches.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4096)
def canonical_smiles(smiles: str | None) -> str | None:
    """RDKit's canonical isomeric SMILES, or None when `smiles` is not a valid molecule."""
    if smiles is None or not smiles.strip():
        return None  # RDKit parses "" as an empty molecule; that is not an answer
    from rdkit import Chem
    from rdkit.rdBase import DisableLog  # what RDLogger re-exports; rdBase is a C module

    DisableLog("rdApp.*")  # an invalid model answer is expected, not worth a log line
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def same_molecule(predicted: str | None, reference: str) -> bool:
    """True when both parse and their canonical SMILES are identical."""
    ref = canonical_smiles(reference)
    return ref is not None and canonical_smiles(predicted) == ref
