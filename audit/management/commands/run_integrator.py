"""manage.py run_integrator: the dedicated log integrator (WARDEN_INTEGRATOR=process)."""

import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from audit.services import integrate_pending, sign_checkpoint_if_due

log = logging.getLogger("warden.audit")


class Command(BaseCommand):
    help = "Append log fields to new events in batches and sign checkpoints, until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--idle", type=float, default=0.02, help="seconds between polls")

    def handle(self, *args, idle=0.02, **options):
        stop = False

        def request_stop(*_):
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        last_checkpoint_check = 0.0
        while not stop:
            close_old_connections()
            try:
                done = integrate_pending(wait=True)
                if time.monotonic() - last_checkpoint_check >= 5:
                    sign_checkpoint_if_due()
                    last_checkpoint_check = time.monotonic()
            except Exception:
                log.exception("integrator pass failed; retrying")
                done = 0
                time.sleep(1)
            if not done:
                time.sleep(idle)
