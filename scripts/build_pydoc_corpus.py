"""Build the real-text wiki corpus of numpy's and sympy's docstrings, linked by their See Also
sections (`longhorizon.domains.search.pydoc_corpus`), as JSONL for `SearchLevel.corpus`.

    python scripts/build_pydoc_corpus.py --out runs/pydoc-corpus.jsonl
    longhorizon synth --domain search --n 20 --out runs/synth-pydoc \\
        --level '{"corpus": "runs/pydoc-corpus.jsonl", "hops": [1, 3]}'
"""

from __future__ import annotations

import argparse
import time
from importlib.metadata import version
from pathlib import Path

from longhorizon.domains.search.pydoc_corpus import pydoc_corpus
from longhorizon.domains.search.wiki import write_documents


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    args = parser.parse_args()
    start = time.perf_counter()
    documents = pydoc_corpus()
    write_documents(args.out, documents)
    links = sum(len(d.links) for d in documents)
    linked = sum(bool(d.links) for d in documents)
    print(
        f"{args.out}: {len(documents)} pages ({linked} with links), {links} links, from "
        f"numpy {version('numpy')} and sympy {version('sympy')}, "
        f"in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
