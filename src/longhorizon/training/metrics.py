"""Training logs: the console (rich), `metrics.jsonl` and TensorBoard, written by rank 0 only.

On resume, records past the checkpoint's step (logged by the killed run after its last
checkpoint) are cut from `metrics.jsonl` and purged from TensorBoard, so the logged curve of a
resumed run is the curve of one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from longhorizon.core.files import write_text_atomic

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


def read_metrics(output_dir: Path) -> list[dict[str, Any]]:
    """The complete records of `metrics.jsonl` (a torn last line is ignored)."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn tail written by a killed process
    return records


def truncate_metrics(output_dir: Path, last_step: int) -> None:
    """Keep records up to `last_step` (atomically: temp file, then rename)."""
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return
    kept = [r for r in read_metrics(output_dir) if r.get("step", 0) <= last_step]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))


def _tensorboard_writer(output_dir: Path, purge_step: int, console: Console) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        console.print(
            "[yellow]tensorboard is not installed: no TensorBoard logs "
            "(pip install tensorboard, or set tensorboard: false)[/yellow]"
        )
        return None
    return SummaryWriter(str(Path(output_dir) / TENSORBOARD_DIR), purge_step=purge_step)


class MetricsLogger:
    """Per-step records to JSONL + TensorBoard, a progress bar and log lines on the console."""

    def __init__(
        self,
        output_dir: Path,
        *,
        enabled: bool,
        total_steps: int,
        start_step: int,
        tensorboard: bool,
        console: Console | None = None,
        name: str = "sft",
    ) -> None:
        self.enabled = enabled
        self.name = name
        self.console = console or Console()
        self.output_dir = Path(output_dir)
        self._file = None
        self._writer = None
        self._progress: Progress | None = None
        if not enabled:
            return
        truncate_metrics(self.output_dir, start_step)
        self._file = (self.output_dir / METRICS_FILE).open("a")
        if tensorboard:
            self._writer = _tensorboard_writer(self.output_dir, start_step + 1, self.console)
        self._progress = self._start_progress(total_steps, start_step)

    def _start_progress(self, total: int, done: int) -> Progress:
        progress = Progress(
            TextColumn(f"[bold]{self.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.console.is_terminal,
        )
        self._task = progress.add_task(self.name, total=total, completed=done, status="")
        progress.start()
        return progress

    def log(self, record: dict[str, Any], *, echo: bool) -> None:
        """Write one step's record; `echo` also prints it as a console line."""
        if not self.enabled or self._file is None:
            return
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = int(record["step"])
        if self._writer is not None:
            for key, value in flatten_record(record).items():
                if key != "step":
                    self._writer.add_scalar(f"train/{key}", value, step)
        status = format_record(record)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, status=status)
        if echo:
            self.console.print(f"step {step:>6}  {status}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
            self._file = None


def flatten_record(record: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers of a (nested) record as `a/b/c` scalars; None, strings and lists are skipped."""
    flat: dict[str, float] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_record(value, f"{name}/"))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


def format_record(record: dict[str, Any]) -> str:
    """loss, lr, grad norm and throughput in one short line (fields a record lacks are left out)."""
    parts = []
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}")
    if record.get("lr") is not None:
        parts.append(f"lr {record['lr']:.2e}")
    if record.get("grad_norm") is not None:
        parts.append(f"grad {record['grad_norm']:.3f}")
    if record.get("tokens_per_s") is not None:
        parts.append(f"tok/s {record['tokens_per_s']:,.0f}")
    return "  ".join(parts)
