"""Every file the viewer reads is named relative to a run directory and resolved inside it.

Threat model: the viewer serves a local run to a browser on this machine; a request (a link
someone sent, a page that guesses URLs) must not read files outside the run directories it
was started with. Names are resolved with symlinks followed, then checked to lie under the
resolved run root, so `..`, absolute paths, encoded traversal (Starlette decodes it before we
see it) and symlinks that leave the run are all refused. Not covered: files inside the run
that a person would rather not show (the viewer shows whatever the run wrote).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["OutsideRun", "RunFiles"]


class OutsideRun(ValueError):
    """A name that does not resolve inside its run directory."""


class RunFiles:
    """Run roots by name ("run", and "other" when a second run is compared)."""

    def __init__(self, roots: dict[str, Path]) -> None:
        self.roots = {name: Path(p).resolve() for name, p in roots.items()}

    def root(self, name: str = "run") -> Path:
        if name not in self.roots:
            raise OutsideRun(f"unknown run {name!r} (known: {', '.join(sorted(self.roots))})")
        return self.roots[name]

    def resolve(self, rel: str, root: str = "run") -> Path:
        """The file or folder `rel` names inside the run, or OutsideRun."""
        base = self.root(root)
        if "\x00" in rel or Path(rel).is_absolute():
            raise OutsideRun(f"{rel!r} is outside the run directory")
        path = (base / rel).resolve()
        if not path.is_relative_to(base):
            raise OutsideRun(f"{rel!r} is outside the run directory")
        return path

    def ref(self, path: Path, root: str = "run") -> str:
        """The run-relative name of a path inside the run ("" for the root itself)."""
        rel = Path(path).resolve().relative_to(self.root(root)).as_posix()
        return "" if rel == "." else rel
