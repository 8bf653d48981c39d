"""The xdist groups of conftest.py hold: every test of a shared server runs on one worker.
(pytest 9.2 moved node ids where pytest-xdist 3.8's loadgroup does not look, and the vLLM
tests then ran on two workers at once, which ran the CI machine out of memory.)"""

from __future__ import annotations

import pytest


def test_every_grouped_test_carries_its_group_in_its_id(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not under pytest-xdist with --dist loadgroup (e.g. -n 0)")
    grouped = {
        item.nodeid: mark.args[0]
        for item in request.session.items
        for mark in item.iter_markers("xdist_group")
    }
    if not grouped:
        pytest.skip("no test of a shared server collected in this run")
    wrong = [nodeid for nodeid, group in grouped.items() if not nodeid.endswith(f"@{group}")]
    assert not wrong, f"xdist will not keep these with their group: {wrong[:5]}"
