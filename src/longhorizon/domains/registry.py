"""The registered domains, by name. `longhorizon.domains` registers the built-in ones on
import; any other domain (a plug-in, a test's toy domain) registers its own spec."""

from __future__ import annotations

from typing import Any

from longhorizon.domains.spec import DomainSpec

__all__ = ["UnknownDomainError", "by_bench", "get", "names", "register", "specs", "unregister"]

_SPECS: dict[str, DomainSpec[Any]] = {}


class UnknownDomainError(ValueError):
    """A domain name nobody registered; the message lists the registered ones."""


def register(spec: DomainSpec[Any]) -> DomainSpec[Any]:
    """Add a domain; registering the same spec again is a no-op, another one of its name errs."""
    current = _SPECS.get(spec.name)
    if current is not None and current is not spec:
        raise ValueError(f"domain {spec.name!r} is already registered (by another spec)")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a domain (tests register toy domains and take them out again)."""
    _SPECS.pop(name, None)


def get(name: str) -> DomainSpec[Any]:
    if name not in _SPECS:
        raise UnknownDomainError(f"unknown domain {name!r}; known: {', '.join(names())}")
    return _SPECS[name]


def names() -> list[str]:
    return sorted(_SPECS)


def specs() -> list[DomainSpec[Any]]:
    return [_SPECS[n] for n in names()]


def by_bench(bench: str) -> DomainSpec[Any] | None:
    """The domain whose held-out bench (or one of its extra benches) is `bench`; None if none."""
    for spec in specs():
        if bench == spec.bench or bench in spec.extra_benches:
            return spec
    return None
