"""Celery tasks of the console app (thin: they call services)."""

from celery import shared_task

from console.authorize import services as authorize


@shared_task(name="console.purge_idempotency_records", time_limit=300, ignore_result=True)
def purge_idempotency_records() -> int:
    return authorize.purge_idempotency_records()
