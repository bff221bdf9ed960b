"""Reads of the approval queue shared by pages (header badge)."""

from __future__ import annotations


def pending_count() -> int:
    """Pending approval requests (header badge on every page)."""
    return 0
