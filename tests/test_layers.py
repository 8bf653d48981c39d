"""What keeps the import layers honest beyond `lint-imports`: pinned copies stay in step."""

from __future__ import annotations

from longhorizon.models.tool_caller import CALCULATOR_SPEC
from longhorizon.tools.calculator import calculator


def test_tool_caller_was_taught_the_live_calculator_schema() -> None:
    # models sit below tools, so the checkpoint pins the schema it was trained on; when the
    # tool's schema changes, bump the checkpoint's version (tiny-tool-caller-vN) and this pin
    assert calculator.spec == CALCULATOR_SPEC
