"""The periodic expiry (SPEC §4): a Celery beat entry, run in-process in embedded mode."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from approvals.models import ApprovalRequest
from console.celery import app
from console.scheduler import InProcessScheduler, _interval
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import events_of


def test_beat_runs_the_expiry_every_few_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["approvals-expire"]
    assert entry["task"] == "approvals.expire_due_requests"
    assert 0 < _interval(entry["schedule"]) <= 10
    app.loader.import_default_modules()
    task = app.tasks["approvals.expire_due_requests"]
    assert task.time_limit and task.max_retries == 0


@pytest.mark.django_db
def test_the_task_expires_due_requests(agent, session):
    due = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=due.pk).update(
        expires_at=timezone.now() - timedelta(seconds=5)
    )
    app.loader.import_default_modules()
    assert app.tasks["approvals.expire_due_requests"].apply().get() == 1
    assert ApprovalRequest.objects.get(pk=due.pk).status == "expired"
    assert len(events_of("approval.expired")) == 1


@pytest.mark.django_db(transaction=True)
def test_the_embedded_scheduler_runs_it_in_process(agent, session):
    due = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=due.pk).update(
        expires_at=timezone.now() - timedelta(seconds=5)
    )
    entry = dict(settings.CELERY_BEAT_SCHEDULE["approvals-expire"], schedule=0.1)
    scheduler = InProcessScheduler({"approvals-expire": entry}, tick=0.05)
    scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ApprovalRequest.objects.get(pk=due.pk).status == "expired":
                break
            time.sleep(0.05)
    finally:
        scheduler.stop()
        scheduler.join(5)
    assert ApprovalRequest.objects.get(pk=due.pk).status == "expired"
