"""PostgreSQL restarted while agents propose actions (issue 8, fault tests).

The database goes away as in a crash (``pg_ctl stop -m immediate``: no clean shutdown,
recovery from the WAL on start) and comes back a few seconds later. A request meeting the
outage waits for a pooled connection (at most the pool's 10 s timeout) or is answered 503
with ``Retry-After``, never 500; afterwards the same processes must serve again without a
restart (pooled connections that died are replaced), the background integrator must pick
up where it stopped, and no committed event may be lost. The agents retry refused proposals with the same ``Idempotency-Key``,
so each proposal is accepted exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from bench.stack import Traffic

from .conftest import assert_reconciled

pytestmark = [pytest.mark.production, pytest.mark.slow]

DOWN_SECONDS = 5


async def test_the_service_recovers_from_a_postgres_restart_without_losing_events(stack):
    seed = stack.seed(agents=20)
    stack.serve(workers=2)
    stack.worker()
    traffic = Traffic(stack.server_url, seed["keys"], pause=0.05, timeout=15)
    running = asyncio.create_task(traffic.run())
    try:
        await asyncio.sleep(3)
        before = len(traffic.accepted)
        assert before > 10 and traffic.retried == 0, traffic.failures[:5]
        await asyncio.to_thread(stack.postgres.stop, "immediate")
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(stack.postgres.start)
        await asyncio.sleep(6)
        recovered_at = time.monotonic() - traffic.started
        await asyncio.sleep(4)
    finally:
        traffic.stop()
        await running

    # Requests meeting the outage either waited for a pooled connection (up to its 10 s
    # timeout) and were answered once the database was back, or were refused with 503
    # (those whose connection died under them), never a 500.
    reasons = Counter(reason.split(" ", 1)[0] for _, reason in traffic.failures)
    assert "500" not in reasons, [r for _, r in traffic.failures if r.startswith("500")][:3]
    assert set(reasons) <= {"503", "409"}, reasons
    # Recovered: within 10 s of the database's return, every request is answered.
    assert traffic.failures_between(recovered_at, float("inf")) == 0
    served_after = [at for at, _ in traffic.latencies if at > recovered_at]
    assert len(served_after) > 20
    assert_reconciled(stack, traffic)
