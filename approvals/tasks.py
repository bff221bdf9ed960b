"""Celery tasks of the approval queue (thin: they call services)."""

from celery import shared_task

from . import services


# Periodic (CELERY_BEAT_SCHEDULE "approvals-expire"): no retries, the next tick runs again;
# each expiry is its own conditional update, so a rerun or a second beat does no harm.
@shared_task(
    name="approvals.expire_due_requests",
    time_limit=60,
    soft_time_limit=50,
    max_retries=0,
    ignore_result=True,
)
def expire_due_requests() -> int:
    return services.expire_due()
