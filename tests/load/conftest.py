"""The load test's stack: the fault tests' fixtures (a private stack per test)."""

from tests.faults.conftest import stack, stack_template  # noqa: F401
