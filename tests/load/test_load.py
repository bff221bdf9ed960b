"""A bounded load test on the production stack (issue 8, load and soak): 50 simulated
agents propose actions as fast as they are answered for 30 s against real uvicorn workers,
a Celery worker, PostgreSQL and Redis of the test's own (bench/stack.py), the same code as
``bench/soak.py`` (``make soak``: 200 agents for 10 minutes)."""

from __future__ import annotations

import pytest

from bench import soak

pytestmark = [pytest.mark.production, pytest.mark.slow]


def test_fifty_agents_for_thirty_seconds(stack):
    result = soak.run(stack, agents=50, seconds=30, think=0.0, workers=2, sample=5)
    print(soak.report(result))  # shown with -s, or when the test fails
    assert result["errors"] == 0, result["error_samples"]
    assert result["accepted"] > 100
    assert result["reconciled"], result
    assert result["verify_log"], result["verify_output"]
    assert result["approvals_opened"] > 0
