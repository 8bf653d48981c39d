"""Third-party chatter goes to a log file; the terminal keeps ours (banners, rich bars, tables).

A fresh `longhorizon run` printed dozens of transformers "Loading weights" and GGUF
"Converting and de-quantizing" tqdm bars and library warnings to stderr. `send_third_party_to`
routes, in one place:

* the loggers of transformers, huggingface_hub and datasets: their own stderr handlers are
  removed and their records propagate to the root logger, which writes to the log file;
* `warnings.warn` (torch, transformers, ...): captured into logging, so into the file;
* every tqdm bar (transformers' loading bars, the GGUF conversion bar, hub downloads): tqdm's
  default output stream becomes the log file (an explicit `file=` still wins).

Our own output is untouched: rich consoles and progress bars write to stdout, and our errors
still reach stderr. With no log file, third-party bars are off and records are dropped.
"""

from __future__ import annotations

import logging
from functools import partialmethod
from pathlib import Path
from typing import IO, Any

import huggingface_hub.utils.logging as hub_logging
import tqdm.std
import transformers.utils.logging as transformers_logging

__all__ = ["LOG_FORMAT", "THIRD_PARTY", "log_file", "send_third_party_to"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
THIRD_PARTY = ("transformers", "huggingface_hub", "datasets", "accelerate", "torch", "py.warnings")
_TQDM_INIT = tqdm.std.tqdm.__init__  # the original, re-wrapped on every call
# A bar in a file: an update at most every 5 s, plain ASCII (no \r-redrawn unicode blocks).
_TQDM_FILE_DEFAULTS: dict[str, Any] = {"mininterval": 5.0, "ascii": True, "ncols": 100}


class _State:
    handler: logging.Handler | None = None
    stream: IO[str] | None = None
    path: Path | None = None


def log_file() -> Path | None:
    """The file third-party output goes to now (None: dropped)."""
    return _State.path


def send_third_party_to(path: Path | None) -> Path | None:
    """Route third-party logs, warnings and tqdm bars to `path` (appended), or drop them."""
    _close()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _State.stream = path.open("a", encoding="utf-8", buffering=1)
        _State.handler = logging.StreamHandler(_State.stream)
    else:
        _State.handler = logging.NullHandler()
    _State.path = path
    _State.handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(_State.handler)
    root.setLevel(logging.INFO)
    _quiet_library_handlers()
    logging.captureWarnings(True)
    _route_tqdm(_State.stream)
    return path


def _close() -> None:
    if _State.handler is not None:
        logging.getLogger().removeHandler(_State.handler)
        _State.handler.close()
    if _State.stream is not None:
        _State.stream.close()
    _State.handler = _State.stream = _State.path = None


def _quiet_library_handlers() -> None:
    """Each library's own stderr handler off; its records go up to the root logger."""
    transformers_logging.disable_default_handler()
    transformers_logging.enable_propagation()
    hub_logging.enable_propagation()
    for name in THIRD_PARTY:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:  # a library's terminal default
                logger.removeHandler(handler)
        logger.propagate = True


def _route_tqdm(stream: IO[str] | None) -> None:
    # tqdm's FAQ way to change every bar's defaults (subclasses included): wrap __init__.
    defaults = {"file": stream, **_TQDM_FILE_DEFAULTS} if stream else {"disable": True}
    tqdm.std.tqdm.__init__ = partialmethod(_TQDM_INIT, **defaults)  # type: ignore[method-assign,assignment]
