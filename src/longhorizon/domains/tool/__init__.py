"""The tool-calling domain: stateful worlds with a written policy and a simulated user.

Two SQLite worlds (`longhorizon.tools.worlds`: retail orders, travel bookings), the
tool-interaction graph and its backward plan search (`graph`), tasks with screening
(`tasks`), a scripted expert (`expert`) and one verifier: an outcome check plus four process
rubrics (`verify`). `SPEC` is the domain as the pipeline sees it.
"""

from longhorizon.domains.tool.expert import ToolExpert, expert_script
from longhorizon.domains.tool.graph import DOMAIN, SIGNATURES, load_into_kag, plan
from longhorizon.domains.tool.level import ToolLevel
from longhorizon.domains.tool.spec import SPEC, ToolProposer, guess_without_tools, heldout_tasks
from longhorizon.domains.tool.tasks import ScreenError, propose_task, run_plan, screen
from longhorizon.domains.tool.verify import final_state, verify

__all__ = [
    "DOMAIN",
    "SIGNATURES",
    "SPEC",
    "ScreenError",
    "ToolExpert",
    "ToolLevel",
    "ToolProposer",
    "expert_script",
    "final_state",
    "guess_without_tools",
    "heldout_tasks",
    "load_into_kag",
    "plan",
    "propose_task",
    "run_plan",
    "screen",
    "verify",
]
