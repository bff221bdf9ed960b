"""manage.py checkpoint: sign a tree head over the whole log now (SPEC §6.3)."""

import json

from django.core.management.base import BaseCommand

from audit.services import sign_checkpoint


class Command(BaseCommand):
    help = "Sign a checkpoint (RFC 9162 tree head) over every event integrated so far."

    def handle(self, *args, **options):
        checkpoint = sign_checkpoint()
        if checkpoint is None:
            self.stdout.write("the log is empty: nothing to sign")
            return
        self.stdout.write(json.dumps(checkpoint.as_json()))
