"""The Celery app. Embedded mode runs tasks in-process (CELERY_TASK_ALWAYS_EAGER);
production uses the Redis broker and separate worker and beat processes."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("warden")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
