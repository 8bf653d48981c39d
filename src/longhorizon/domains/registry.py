"""The registered domains, by name. `longhorizon.domains` registers the built-in ones on
import, then the plug-ins (`load_plugins`); a test's toy domain registers its own spec."""

from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Any

from longhorizon.domains.spec import DomainSpec

__all__ = [
    "PLUGINS_ENV",
    "PLUGIN_GROUP",
    "PluginError",
    "UnknownDomainError",
    "by_bench",
    "get",
    "load_plugins",
    "names",
    "register",
    "specs",
    "unregister",
]

PLUGINS_ENV = "LONGHORIZON_DOMAINS"  # "pkg.mod" or "pkg.mod:ATTR", comma-separated
PLUGIN_GROUP = "longhorizon.domains"  # entry points: name = "pkg.mod:SPEC"

_SPECS: dict[str, DomainSpec[Any]] = {}
_plugins_loaded = False


class UnknownDomainError(ValueError):
    """A domain name nobody registered; the message lists the registered ones."""


class PluginError(ImportError):
    """A plug-in domain that cannot be loaded; the message names the plug-in and the setting."""


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
    load_plugins()
    if name not in _SPECS:
        raise UnknownDomainError(f"unknown domain {name!r}; known: {', '.join(names())}")
    return _SPECS[name]


def names() -> list[str]:
    load_plugins()
    return sorted(_SPECS)


def specs() -> list[DomainSpec[Any]]:
    return [_SPECS[n] for n in names()]


def by_bench(bench: str) -> DomainSpec[Any] | None:
    """The domain whose held-out bench (or one of its extra benches) is `bench`; None if none."""
    for spec in specs():
        if bench == spec.bench or bench in spec.extra_benches:
            return spec
    return None


def load_plugins() -> None:
    """Register every plug-in domain (the env setting, then installed entry points), once, at
    the first lookup (so a bad plug-in is a command's error, not an import crash). A module
    given without `:ATTR` exports `SPEC`."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    targets = [t.strip() for t in os.environ.get(PLUGINS_ENV, "").split(",") if t.strip()]
    targets += [ep.value for ep in entry_points(group=PLUGIN_GROUP)]
    for target in targets:
        register(_load(target))


def _load(target: str) -> DomainSpec[Any]:
    module_name, _, attr = target.partition(":")
    try:
        spec = getattr(importlib.import_module(module_name), attr or "SPEC")
    except (ImportError, AttributeError) as exc:
        raise PluginError(
            f"plug-in domain {target!r} ({PLUGINS_ENV} or entry point group {PLUGIN_GROUP!r}): "
            f"{exc}"
        ) from exc
    if not isinstance(spec, DomainSpec):
        raise PluginError(f"plug-in domain {target!r} is a {type(spec).__name__}, not a DomainSpec")
    return spec
