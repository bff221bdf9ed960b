"""Periodic jobs in-process, for the embedded default (DESIGN.md "Modes").

Production runs Celery beat; embedded mode has no beat process, so ``manage.py serve``
starts this thread, which runs the same ``CELERY_BEAT_SCHEDULE`` entries in-process.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connections

log = logging.getLogger("warden.scheduler")


def _interval(schedule) -> float:
    if isinstance(schedule, int | float):
        return float(schedule)
    if isinstance(schedule, timedelta):
        return schedule.total_seconds()
    run_every = getattr(schedule, "run_every", None)  # celery.schedules.schedule
    if run_every is not None:
        return run_every.total_seconds()
    raise ValueError(f"the in-process scheduler supports fixed intervals only, not {schedule!r}")


class InProcessScheduler(threading.Thread):
    def __init__(self, schedule: dict | None = None, tick: float = 1.0) -> None:
        super().__init__(name="warden-scheduler", daemon=True)
        self.schedule = schedule if schedule is not None else settings.CELERY_BEAT_SCHEDULE
        self.tick = tick
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        from console.celery import app

        # What a Celery worker does at start: import every app's tasks module, so the
        # entries below are registered (autodiscovery waits for this signal).
        app.loader.import_default_modules()
        try:
            self._loop(app)
        finally:
            connections.close_all()  # this thread's connections end with it

    def _loop(self, app) -> None:
        next_run = {
            name: time.monotonic() + _interval(entry["schedule"])
            for name, entry in self.schedule.items()
        }
        while not self.stopped.wait(self.tick):
            now = time.monotonic()
            for name, entry in self.schedule.items():
                if now < next_run[name]:
                    continue
                next_run[name] = now + _interval(entry["schedule"])
                close_old_connections()
                try:
                    app.tasks[entry["task"]].apply(
                        args=entry.get("args", ()), kwargs=entry.get("kwargs", {})
                    )
                except Exception:  # keep the loop alive; the job runs again next time
                    log.exception("periodic job %s failed", name)
                finally:
                    close_old_connections()
