"""The trust tasks: registered, scheduled, crash-safe settings, thin and replay-safe."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

from django.conf import settings

from console.celery import app
from console.models import Agent
from tests.trust import events as ev
from tests.trust.events import DAY, T0, at
from trust import tasks
from trust.models import TrustHistory


def test_both_tasks_are_registered_and_survive_a_lost_worker():
    for name in ("trust.recompute_trust", "trust.advance_trust_clock"):
        task = app.tasks[name]
        assert task.acks_late and task.reject_on_worker_lost
        assert task.time_limit and task.soft_time_limit < task.time_limit
    assert app.tasks["trust.recompute_trust"].max_retries == 5
    assert settings.CELERY_TASK_ROUTES["trust.*"] == {"queue": "trust"}


def test_the_periodic_pass_is_in_the_beat_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["trust-advance-clock"]
    assert entry["task"] == "trust.advance_trust_clock" and entry["task"] in app.tasks
    assert entry["schedule"] <= 15 * 60  # several passes within the settling delay


def test_the_visibility_timeout_comes_from_the_environment():
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'console.settings'; "
        "django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_TRANSPORT_OPTIONS)"
    )
    env = {**os.environ, "WARDEN_CELERY_VISIBILITY_TIMEOUT": "7"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "'visibility_timeout': 7" in out
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 60  # default


def test_the_test_pause_is_off_unless_asked_for(monkeypatch, tmp_path):
    monkeypatch.delenv("WARDEN_TEST_TRUST_PAUSE", raising=False)
    assert tasks._test_pause() is None
    marker = tmp_path / "m"
    monkeypatch.setenv("WARDEN_TEST_TRUST_PAUSE", "0.01")
    monkeypatch.setenv("WARDEN_TEST_TRUST_PAUSE_FILE", str(marker))
    tasks._test_pause()()
    assert marker.read_text() == str(os.getpid())


def test_the_periodic_task_runs_in_process(admin_user):
    agent = ev.register_assessed(admin_user, "clocked")
    with at(T0 + timedelta(hours=1)):
        ev.violation(agent, None, "major")
    with at(T0.replace(hour=0) + 9 * DAY + timedelta(hours=1)):  # first recovery day
        app.tasks["trust.advance_trust_clock"].apply().get()  # as the embedded scheduler does
    assert Agent.objects.get(pk=agent.pk).behavioral == Decimal("86.00")
    assert TrustHistory.objects.filter(agent=agent, change_type="recovery").count() == 1
