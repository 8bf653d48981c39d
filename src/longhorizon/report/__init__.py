"""The run report: a Markdown file and one self-contained HTML page for a pipeline run.

from longhorizon.report import write_report
md_path, html_path = write_report("runs/default")
"""

from longhorizon.report.data import RunData, load_run
from longhorizon.report.render import write_report
from longhorizon.report.results import ResultsTable, build_results

__all__ = ["ResultsTable", "RunData", "build_results", "load_run", "write_report"]
