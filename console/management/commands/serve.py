"""manage.py serve: the console on uvicorn (HTTP + websockets), as `make run` starts it.

In embedded mode it also runs the periodic jobs in-process (there is no Celery beat).
"""

from __future__ import annotations

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from console.scheduler import InProcessScheduler


def proxy_options() -> dict:
    """X-Forwarded-For / -Proto are believed only from settings.WARDEN_TRUSTED_PROXIES."""
    trusted = settings.WARDEN_TRUSTED_PROXIES
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted) or ""}


class Command(BaseCommand):
    help = "Serve the console and API with uvicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="production mode only")
        parser.add_argument("--no-scheduler", action="store_true")

    def handle(self, *args, host, port, workers, no_scheduler=False, **options):
        if settings.EMBEDDED and workers != 1:
            self.stderr.write(
                "embedded mode keeps one process (in-memory channel layer); using 1 worker"
            )
            workers = 1
        if settings.CELERY_TASK_ALWAYS_EAGER and not no_scheduler:
            InProcessScheduler().start()
        uvicorn.run(
            "console.asgi:application",
            host=host,
            port=port,
            workers=workers,
            lifespan="off",
            log_level="warning",
            **proxy_options(),
        )
