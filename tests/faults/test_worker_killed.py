"""A Celery worker killed in the middle of an export (issue 8, fault tests).

A big audit export runs as the ``audit.export_events`` task on the ``exports`` queue
(acks late, rejected on worker loss). The worker writing it is killed with SIGKILL half-way;
Redis hands the unacknowledged task to another worker once its visibility timeout has
passed, and that worker must take the export over and finish it: one file, one
``export.created`` event, every row.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import httpx
import pytest

from bench.stack import Traffic

from .conftest import assert_reconciled

pytestmark = [pytest.mark.production, pytest.mark.slow]

EVENTS = 8_000


def export_state(stack, export_id: str) -> tuple[str, int, int]:
    return stack.sql(
        "SELECT status, rows_done, rows_total FROM audit_export WHERE id = %s", [export_id]
    )[0]


async def test_an_export_whose_worker_is_killed_completes_once(stack):
    # Redelivery after 4 s unacked, swept every second (settings: WARDEN_CELERY_*); an
    # export silent for 8 s may be taken over: the redelivered task arrives while the
    # export still looks alive, as with the defaults (300 s and 300 s).
    stack.extra_env.update(
        WARDEN_CELERY_VISIBILITY_TIMEOUT="4",
        WARDEN_CELERY_RESTORE_INTERVAL="1",
        WARDEN_CELERY_RESTORE_THROTTLE="1",
        WARDEN_EXPORT_STALE_SECONDS="8",
        WARDEN_EXPORT_ASYNC_ROWS="1000",
    )
    seed = stack.seed(agents=4, events=EVENTS)
    stack.serve(workers=1)
    traffic = Traffic(stack.server_url, seed["keys"])
    await traffic.run(seconds=3)
    stack.wait_integrated()
    first = stack.worker("worker-1", queues="exports")

    async with httpx.AsyncClient(
        base_url=stack.server_url, cookies={"sessionid": seed["admin_session"]}, timeout=30
    ) as http:
        response = await http.get("/api/v1/events/export.xlsx")
        assert response.status_code == 202, response.text
        export_id = response.json()["export_id"]

        deadline = time.monotonic() + 60
        while True:
            status, done, total = export_state(stack, export_id)
            if status == "running":  # claimed by worker-1: it is writing the file
                break
            assert status in ("queued", "running"), status
            assert first.poll() is None, stack.log_text("worker-1")[-3000:]
            assert time.monotonic() < deadline, "the export never started"
            await asyncio.sleep(0.02)
        stack.kill("worker-1")  # SIGKILL, half-way
        status, done, total = export_state(stack, export_id)
        assert status == "running" and done < total, (status, done, total)

        stack.worker("worker-2", queues="exports")
        deadline = time.monotonic() + 60
        while (status := export_state(stack, export_id)[0]) in ("queued", "running"):
            assert time.monotonic() < deadline, "the export was not taken over"
            await asyncio.sleep(0.2)
        assert status == "done", stack.log_text("worker-2")[-3000:]

        document = (await http.get(f"/api/v1/exports/{export_id}")).json()
        assert document["rows_done"] == document["rows_total"] == total
        data = (await http.get(document["download_url"])).content
        assert hashlib.sha256(data).hexdigest() == document["manifest"]["sha256"]

    # Once: one export.created event for it, even if both runs got far.
    created = stack.sql(
        "SELECT count(*) FROM audit_governanceevent WHERE event_type = 'export.created' "
        "AND payload_json::jsonb ->> 'export_id' = %s",
        [export_id],
    )[0][0]
    assert created == 1
    assert_reconciled(stack, traffic)
