"""`write_report(run_dir)`: RUN/report/report.md, RUN/report/report.html and the plots."""

from __future__ import annotations

from pathlib import Path

from longhorizon.core.files import write_text_atomic
from longhorizon.report.data import RunData, load_run
from longhorizon.report.doc import to_html, to_markdown
from longhorizon.report.plots import make_plots
from longhorizon.report.results import ResultsTable, build_results
from longhorizon.report.sections import build_blocks

REPORT_DIR = "report"
PLOTS_DIR = "plots"
MARKDOWN_FILE = "report.md"
HTML_FILE = "report.html"


def write_report(run_dir: str | Path) -> tuple[Path, Path]:
    """Write the Markdown report and the self-contained HTML page; returns (md, html) paths.

    Raises FileNotFoundError when `run_dir` is not a directory; a missing part of the run
    only shows up as missing in the report.
    """
    md_path, html_path, _, _ = build_report(Path(run_dir))
    return md_path, html_path


def build_report(run_dir: Path) -> tuple[Path, Path, RunData, ResultsTable]:
    """`write_report`, also returning what was loaded and the results table (for the CLI)."""
    run = load_run(run_dir)
    table = build_results(run)
    out = run_dir / REPORT_DIR
    plots = make_plots(run, table, out / PLOTS_DIR)
    blocks = build_blocks(run, table, plots, PLOTS_DIR)
    md_path = _write(out / MARKDOWN_FILE, to_markdown(blocks))
    html_path = _write(out / HTML_FILE, to_html(blocks, f"Run report: {run.run_dir.name}"))
    return md_path, html_path, run, table


def _write(path: Path, text: str) -> Path:
    return write_text_atomic(path, text)
