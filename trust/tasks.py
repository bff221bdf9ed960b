"""Celery tasks of the trust app (thin: ids in, services do the work).

Both are safe to replay: ``recompute_trust`` applies only events after the agent's
watermark under a row lock; ``advance_trust_clock`` only day boundaries not evaluated yet.
With ``acks_late`` and ``reject_on_worker_lost`` a task whose worker dies is delivered
again (on Redis after the broker's ``visibility_timeout``, see ``console/settings.py``).

``WARDEN_TEST_TRUST_PAUSE`` (seconds) and ``WARDEN_TEST_TRUST_PAUSE_FILE`` exist for the
crash test only: the worker then waits inside the recompute's transaction, after its
writes and before commit, having touched the file, so a test can kill it there.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import shared_task
from django.db import InterfaceError, OperationalError

from . import services


def _test_pause():
    seconds = float(os.environ.get("WARDEN_TEST_TRUST_PAUSE") or 0)
    if seconds <= 0:
        return None
    marker = os.environ.get("WARDEN_TEST_TRUST_PAUSE_FILE")

    def pause() -> None:
        if marker:
            Path(marker).write_text(str(os.getpid()))
        time.sleep(seconds)

    return pause


@shared_task(
    name="trust.recompute_trust",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=90,
    time_limit=120,
    ignore_result=True,
)
def recompute_trust(agent_id: str, cause_event_id: str | None = None) -> int:
    return services.recompute_trust(agent_id, cause_event_id, before_commit=_test_pause())


@shared_task(
    name="trust.advance_trust_clock",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=840,
    time_limit=900,
    ignore_result=True,
)
def advance_trust_clock() -> None:
    services.advance_trust_clock()
