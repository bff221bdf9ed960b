"""Celery tasks of the event log (thin: they call services)."""

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
    services.run_export(export_id)
