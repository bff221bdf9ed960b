"""The pipeline's clock. Tests of multi-day stories replace ``now`` instead of sleeping
(the live test server runs in the test process, so it sees the replacement too)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    return timezone.now()
