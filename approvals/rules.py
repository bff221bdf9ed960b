"""The arithmetic of approval requests (SPEC §4): priority, four-eyes, SLA and expiry.

Pure functions on plain values (no Django import; a test proves it), so the table below is
easy to test exhaustively and to reuse.

Priority is the higher of two ranks on the scale low < medium < high < critical:

==================  ========  ==========  ===========  ============
                    low       medium      high         critical
==================  ========  ==========  ===========  ============
severity            none      minor       major        critical
effective tier      1         2           3            4 (or unknown)
==================  ========  ==========  ===========  ============

So a major-severity request from a tier 2 agent is *high*, a request with no severity from a
tier 4 agent is *critical*. An unknown tier counts as 4 (fail closed: the strictest review).

Four-eyes (SPEC §4): a request of priority critical, or from effective tier 4, needs two
distinct approvers; one rejection rejects.

SLA (SPEC §4): a request is *at risk* once 80% of its SLA target has elapsed and *breached*
at 100%.
"""

from __future__ import annotations

from datetime import datetime, timedelta

PRIORITIES = ("low", "medium", "high", "critical")
SEVERITIES = ("minor", "major", "critical")
SLA_STATES = ("ok", "at_risk", "breached")

SLA_AT_RISK_FRACTION = 0.8
DEFAULT_SLA_SECONDS = 5 * 60

_SEVERITY_RANK = {None: 0, "minor": 1, "major": 2, "critical": 3}
_TIER_RANK = {1: 0, 2: 1, 3: 2, 4: 3}


def priority(severity: str | None, tier: int | None) -> str:
    """The request's priority from the verdict's severity and the agent's effective tier."""
    if severity not in _SEVERITY_RANK:
        raise ValueError(f"unknown severity {severity!r}; expected one of {SEVERITIES} or None")
    if tier is None:
        tier_rank = _TIER_RANK[4]
    elif tier in _TIER_RANK:
        tier_rank = _TIER_RANK[tier]
    else:
        raise ValueError(f"unknown tier {tier!r}; expected 1-4 or None")
    return PRIORITIES[max(_SEVERITY_RANK[severity], tier_rank)]


def priority_rank(value: str) -> int:
    """0 (low) … 3 (critical), for sorting."""
    return PRIORITIES.index(value)


def approvals_needed(priority_value: str, tier: int | None) -> int:
    """Four-eyes: two distinct approvers for priority critical or effective tier 4."""
    if priority_value not in PRIORITIES:
        raise ValueError(f"unknown priority {priority_value!r}")
    return 2 if priority_value == "critical" or tier is None or tier == 4 else 1


def expiry(created: datetime, ttl_seconds: int) -> datetime:
    return created + timedelta(seconds=ttl_seconds)


def sla_times(created: datetime, sla_seconds: int) -> tuple[datetime, datetime]:
    """(at risk from, breached from) for a request created at ``created``."""
    if sla_seconds <= 0:
        raise ValueError("the SLA target must be positive")
    return (
        created + timedelta(seconds=sla_seconds * SLA_AT_RISK_FRACTION),
        created + timedelta(seconds=sla_seconds),
    )


def sla_state(at_risk_from: datetime, breached_from: datetime, now: datetime) -> str:
    if now >= breached_from:
        return "breached"
    if now >= at_risk_from:
        return "at_risk"
    return "ok"


def is_past_due(expires_at: datetime | None, now: datetime) -> bool:
    """A pending request whose expiry has passed reads as expired (SPEC §4, fail closed)."""
    return expires_at is not None and now >= expires_at
