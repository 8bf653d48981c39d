"""A real-text wiki corpus from installed packages: the docstrings of numpy's and sympy's
public functions, classes and methods, one page each, linked by their "See Also" sections
(cross references their authors wrote).

`pydoc_corpus()` reads a fixed list of namespaces (`NAMESPACES`), so the pages depend only on
the installed versions, not on what else the process imported: numpy 2.4.6 and sympy 1.14.0
give 2,969 pages and 4,252 links (`scripts/build_pydoc_corpus.py` writes them as JSONL). A
page's id and title are the object's qualified name (`numpy.linalg.solve`), its text the
docstring. A See Also name is resolved as written, inside the page's module, inside its
package, then by its last part when that names one page; a name outside the namespaces is
imported by its dotted path and becomes a page too.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from longhorizon.tools.corpus import Document

__all__ = ["MIN_DOC_CHARS", "NAMESPACES", "pydoc_corpus", "see_also"]

NAMESPACES: tuple[str, ...] = (
    "numpy", "numpy.linalg", "numpy.fft", "numpy.random", "numpy.polynomial",
    "numpy.polynomial.polynomial", "numpy.polynomial.chebyshev", "numpy.polynomial.legendre",
    "numpy.polynomial.hermite", "numpy.polynomial.hermite_e", "numpy.polynomial.laguerre",
    "numpy.ma", "numpy.strings", "numpy.char", "numpy.rec", "numpy.lib.stride_tricks",
    "numpy.lib.scimath",
    "sympy", "sympy.core", "sympy.functions", "sympy.simplify", "sympy.polys",
    "sympy.polys.galoistools", "sympy.solvers.ode", "sympy.integrals", "sympy.series",
    "sympy.matrices", "sympy.ntheory", "sympy.combinatorics", "sympy.discrete", "sympy.sets",
    "sympy.logic", "sympy.geometry", "sympy.tensor", "sympy.stats", "sympy.physics.units",
    "sympy.printing", "sympy.utilities.iterables",
)  # fmt: skip
MIN_DOC_CHARS = 200  # shorter docstrings are stubs ("Alias for ...") with nothing to ask

_SEE_ALSO = re.compile(r"^[ \t]*See Also[ \t]*\n[ \t]*([-=])\1{3,}[ \t]*\n", re.M)
_SECTION = re.compile(r"^[ \t]*\S.*\n[ \t]*([-=])\1{2,}[ \t]*$", re.M)
_ROLE = re.compile(r":\w+:")
_NAME = re.compile(r"[A-Za-z_][\w.]*")


def see_also(doc: str) -> list[str]:
    """The names a numpydoc or sympy "See Also" section lists (`name : what it does`, or names
    separated by commas), in order; descriptions (indented lines) are skipped."""
    match = _SEE_ALSO.search(doc)
    if match is None:
        return []
    rest = doc[match.end() :]
    end = _SECTION.search(rest)
    lines = [line for line in (rest[: end.start()] if end else rest).splitlines() if line.strip()]
    indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
    names: list[str] = []
    for line in lines:
        if len(line) - len(line.lstrip()) > indent:
            continue
        head = re.split(r"\s*:\s|\s:$", line.strip())[0]
        for part in head.split(","):
            name = _ROLE.sub("", part).strip(" `~").removesuffix("()").rstrip(".")
            if _NAME.fullmatch(name):
                names.append(name.replace("np.", "numpy.", 1) if name.startswith("np.") else name)
    return names


def _public(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if not isinstance(names, list | tuple):
        names = [n for n in dir(module) if not n.startswith("_")]
    return sorted(str(n) for n in names)


def _docstring(obj: Any) -> str | None:
    """The object's docstring when it is a page: a class or callable with a long enough one."""
    if isinstance(obj, types.ModuleType) or not (inspect.isclass(obj) or callable(obj)):
        return None
    doc = getattr(obj, "__doc__", None)
    text = inspect.cleandoc(doc) if isinstance(doc, str) else ""
    return text if len(text) >= MIN_DOC_CHARS else None


def _methods(cls: type) -> Iterator[tuple[str, Any]]:
    """A class's own public methods (functions under classmethod, staticmethod, property)."""
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        yield name, member


class _Pages:
    """Pages by qualified name, in the order found, and the page of each object seen."""

    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.order: list[str] = []
        self.of_object: dict[int, str] = {}
        self.alias: dict[str, str] = {}  # every qualified name an object was found under
        self.keep: list[Any] = []  # objects stay alive so their id() is not reused

    def add(self, name: str, obj: Any) -> str | None:
        """The page of `obj` (made now, with its class's methods, if new), or None."""
        if id(obj) in self.of_object:
            self.alias.setdefault(name, self.of_object[id(obj)])
            return self.of_object[id(obj)]
        doc = _docstring(obj)
        if doc is None:
            return None
        self._page(name, obj, doc)
        package = name.split(".")[0]
        if inspect.isclass(obj) and str(getattr(obj, "__module__", "")).startswith(package):
            for method, member in _methods(obj):
                text = _docstring(member)
                if text is not None and id(member) not in self.of_object:
                    self._page(f"{name}.{method}", member, text)
        return name

    def _page(self, name: str, obj: Any, doc: str) -> None:
        self.text[name] = doc
        self.order.append(name)
        self.of_object[id(obj)] = name
        self.alias.setdefault(name, name)
        self.keep.append(obj)


def _lookup(name: str) -> Any | None:
    """The object a dotted name imports to (its longest module prefix, then attributes)."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def _candidates(page: str, name: str) -> list[str]:
    """Where a See Also name may live: as written, then in the page's scopes, innermost first
    (`numpy.linalg.solve` lists `lstsq`: numpy.linalg.lstsq, then numpy.lstsq)."""
    scopes = page.split(".")[:-1]
    return [name, *(".".join([*scopes[:i], name]) for i in range(len(scopes), 0, -1))]


def _resolve(pages: _Pages, page: str, name: str, by_last: dict[str, set[str]]) -> str | None:
    candidates = _candidates(page, name)
    for candidate in candidates:
        if candidate in pages.alias:
            return pages.alias[candidate]
    named = by_last.get(name.rsplit(".", 1)[-1], set())
    if len(named) == 1:
        return next(iter(named))
    package = page.split(".")[0]
    for candidate in candidates:
        if candidate.startswith(f"{package}.") and (obj := _lookup(candidate)) is not None:
            return pages.add(candidate, obj)
    return None


def pydoc_corpus(namespaces: Sequence[str] = NAMESPACES) -> list[Document]:
    """The pages of `namespaces` and of what their See Also sections name, with links."""
    pages = _Pages()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases warn when read
        for namespace in namespaces:
            module = importlib.import_module(namespace)
            for name in _public(module):
                obj = getattr(module, name, None)
                if obj is not None:
                    pages.add(f"{namespace}.{name}", obj)
        by_last: dict[str, set[str]] = defaultdict(set)
        for page in pages.text:
            by_last[page.rsplit(".", 1)[1]].add(page)
        links: dict[str, list[str]] = {}
        for page in pages.order:  # pages found by their links join the list, read in turn
            targets = (_resolve(pages, page, n, by_last) for n in see_also(pages.text[page]))
            links[page] = list(dict.fromkeys(t for t in targets if t is not None and t != page))
    return [Document(id=p, title=p, text=t, links=links[p]) for p, t in pages.text.items()]
