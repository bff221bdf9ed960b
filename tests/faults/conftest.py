"""A private production stack per test (bench/stack.py): its own PostgreSQL and Redis on
free loopback ports, Warden's server (``manage.py serve``) and a Celery worker as real
subprocesses, so a test may stop, kill and restart any of them. The machine's shared
PostgreSQL and Redis are never touched."""

from __future__ import annotations

import pytest

from bench.stack import Stack, Unavailable


def make_stack(tmp_path, **options) -> Stack:
    try:
        return Stack(tmp_path / "stack", **options)
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def stack_template(tmp_path_factory):
    """One migrated PostgreSQL data directory, copied by each test's stack."""
    builder = make_stack(tmp_path_factory.mktemp("stack-template"))
    try:
        yield builder.build_template()
    finally:
        builder.stop()


@pytest.fixture
def stack(tmp_path, stack_template):
    stack = make_stack(tmp_path)
    try:
        stack.start(template=stack_template)
        yield stack
    finally:
        stack.stop()
        # Shown by pytest only when the test failed.
        for name in ("server", "worker", "worker-1", "worker-2"):
            text = stack.log_text(name)
            if text:
                print(f"--- {name}.log (last 6000 characters) ---\n{text[-6000:]}")


def assert_reconciled(stack: Stack, traffic) -> None:
    """Every accepted proposal has exactly one ``action.evaluated`` event and there is no
    other; every event is in the log; the log verifies."""
    stack.wait_integrated()
    ids = stack.evaluated_action_ids()
    assert len(ids) == len(set(ids)), "an action was evaluated twice"
    assert len(ids) == len(traffic.accepted), (len(ids), len(traffic.accepted))
    assert set(ids) == set(traffic.accepted)
    ok, output = stack.verify_log()
    assert ok, output
