"""Celery tasks of the event log (thin: they call services)."""

import time

from celery import shared_task

from . import services


@shared_task(name="audit.sign_checkpoint_if_due", time_limit=120, ignore_result=True)
def sign_checkpoint_if_due() -> None:
    services.sign_checkpoint_if_due()


@shared_task(
    name="audit.export_events",  # routed to the "exports" queue (settings.CELERY_TASK_ROUTES)
    acks_late=True,
    max_retries=0,  # a failed export is shown as failed; a dead worker's is redelivered
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 60,
    ignore_result=True,
)
def export_events(export_id: str) -> None:
    # Redelivered after the worker writing it died, the export still looks alive until
    # its progress is WARDEN_EXPORT_STALE_SECONDS old: wait for that and take it over
    # (without this the redelivered task found nothing to claim, was acknowledged, and
    # the export stayed "running" for ever).
    while services.run_export(export_id) is None:
        wait = services.export_takeover_in(export_id)
        if wait is None:
            return
        time.sleep(wait + 0.05)
