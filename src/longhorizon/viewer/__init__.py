"""The trajectory and run viewer: `longhorizon view RUN_DIR` serves a run to the browser.

- paths:    every requested name resolved inside the run (the traversal guard)
- discover: what a run holds (stores, synthesis, evaluation, OPD monitors, report)
- listing:  lazy, filtered paging over trajectory stores (lines: offsets without parsing)
- conversation / tokens / heatmap: one episode, its token sequences, OPD per-token monitors
- synth / compare: KAG provenance of a task; two stages on the same held-out items
- app / server: the Starlette app and the uvicorn server
"""

from longhorizon.viewer.app import create_app
from longhorizon.viewer.listing import Filters, TrajectoryLists
from longhorizon.viewer.paths import OutsideRun, RunFiles
from longhorizon.viewer.server import DEFAULT_HOST, exposure_warning, make_server
from longhorizon.viewer.state import ViewerState

__all__ = [
    "DEFAULT_HOST",
    "Filters",
    "OutsideRun",
    "RunFiles",
    "TrajectoryLists",
    "ViewerState",
    "create_app",
    "exposure_warning",
    "make_server",
]
