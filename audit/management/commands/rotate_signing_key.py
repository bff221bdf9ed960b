"""manage.py rotate_signing_key: start a new Ed25519 key (SPEC §6.2)."""

from django.core.management.base import BaseCommand, CommandError

from audit.keys import KeyringError, keyring


class Command(BaseCommand):
    help = "Start a new signing key; events signed before keep verifying with the old one."

    def handle(self, *args, **options):
        try:
            key = keyring().rotate()
        except KeyringError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"new signing key {key.key_id} valid from {key.as_json()['valid_from']}")
