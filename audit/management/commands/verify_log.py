"""manage.py verify_log [--against CHECKPOINT.json] [--keys KEYS.json] (SPEC §6.3)."""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from audit import selectors
from audit.keys import KeyringError, keyring, parse_keys
from audit.logcheck import check_batches


class Command(BaseCommand):
    help = "Re-check the event log: chain, every signature, every checkpoint."

    def add_arguments(self, parser):
        parser.add_argument(
            "--against",
            help="a checkpoint JSON kept outside the database (downloaded or from a witness)",
        )
        parser.add_argument(
            "--keys",
            help="trusted public keys (warden-keys.json) instead of the server's key directory",
        )
        parser.add_argument("--workers", type=int, default=None, help="signature processes")

    def handle(self, *args, against=None, keys=None, workers=None, **options):
        try:
            if keys:
                with open(keys) as handle:
                    public_keys = parse_keys(json.load(handle))
            else:
                public_keys = keyring().public_keys()
            external = None
            if against:
                with open(against) as handle:
                    external = json.load(handle)
                if "checkpoint" in external:  # a proof certificate also carries one
                    external = external["checkpoint"]
                missing = {"tree_size", "root_hash", "timestamp", "key_id", "signature"} - set(
                    external
                )
                if missing:
                    raise CommandError(f"{against}: checkpoint lacks {', '.join(sorted(missing))}")
        except (OSError, ValueError, KeyError, KeyringError) as exc:
            raise CommandError(f"unusable input: {exc}") from exc

        started = time.perf_counter()
        report = check_batches(
            selectors.log_batches(),
            public_keys,
            selectors.checkpoints(),
            against=external,
            workers=workers,
        )
        elapsed = time.perf_counter() - started
        rate = report.events / elapsed if elapsed > 0 else 0.0
        self.stdout.write(
            f"checked {report.events} events, {report.signatures_checked} signatures, "
            f"{report.checkpoints_checked} checkpoints in {elapsed:.2f}s ({rate:,.0f} events/s)"
        )
        if report.latest_checkpoint:
            self.stdout.write("latest checkpoint: " + json.dumps(report.latest_checkpoint))
        else:
            self.stdout.write("latest checkpoint: none yet")
        if not report.ok:
            for failure in sorted(report.failures, key=lambda f: f.sort_key())[:20]:
                self.stderr.write(f"FAIL {failure}")
            first = report.first_failure
            raise CommandError(
                f"event log does NOT verify; first bad seq {first.seq} ({first.check})"
            )
        self.stdout.write(self.style.SUCCESS("event log verifies"))
