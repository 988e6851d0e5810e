"""The chaos test's pytest timeout follows its rounds (``--long`` runs several, longer)."""

from __future__ import annotations

import pytest

from tests.chaos.settings import time_budget_s


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each chaos test a timeout that covers all its rounds."""
    budget = time_budget_s(bool(config.getoption("--long")))
    for item in items:
        if item.get_closest_marker("chaos") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(budget))
