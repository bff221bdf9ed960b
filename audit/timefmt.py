"""RFC 3339 UTC timestamps as they appear in canonical events (standard library only).

Events always carry six fractional digits and a ``Z`` (``2026-11-21T13:53:00.123456Z``) so
the canonical bytes of an event never depend on how a database returns its datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return value.astimezone(UTC)
