"""Celery tasks of the event log (thin: they call services)."""

from celery import shared_task

from . import services


@shared_task(name="audit.sign_checkpoint_if_due", time_limit=120, ignore_result=True)
def sign_checkpoint_if_due() -> None:
    services.sign_checkpoint_if_due()
