"""SPEC §4 arithmetic: priority from severity and tier, four-eyes, SLA states, expiry."""

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals import rules

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# The documented table: the higher of the two ranks.
TABLE = {
    (None, 1): "low",
    (None, 2): "medium",
    (None, 3): "high",
    (None, 4): "critical",
    ("minor", 1): "medium",
    ("minor", 2): "medium",
    ("minor", 3): "high",
    ("minor", 4): "critical",
    ("major", 1): "high",
    ("major", 2): "high",
    ("major", 3): "high",
    ("major", 4): "critical",
    ("critical", 1): "critical",
    ("critical", 2): "critical",
    ("critical", 3): "critical",
    ("critical", 4): "critical",
}


@pytest.mark.parametrize(("severity", "tier"), list(TABLE))
def test_priority_follows_the_documented_table(severity, tier):
    assert rules.priority(severity, tier) == TABLE[(severity, tier)]


def test_an_unknown_tier_is_treated_as_the_strictest():
    assert rules.priority(None, None) == "critical"
    assert rules.approvals_needed("low", None) == 2


@pytest.mark.parametrize(("severity", "tier"), [("fatal", 2), (None, 5), (None, 0)])
def test_unknown_inputs_are_refused(severity, tier):
    with pytest.raises(ValueError):
        rules.priority(severity, tier)


@given(st.sampled_from([None, *rules.SEVERITIES]), st.sampled_from([1, 2, 3, 4]))
def test_priority_never_drops_below_either_input(severity, tier):
    rank = rules.priority_rank(rules.priority(severity, tier))
    assert rank >= tier - 1
    assert rank >= {None: 0, "minor": 1, "major": 2, "critical": 3}[severity]


@pytest.mark.parametrize(
    ("priority", "tier", "needed"),
    [
        ("critical", 2, 2),  # priority critical → four-eyes
        ("high", 4, 2),  # effective tier 4 → four-eyes
        ("critical", 4, 2),
        ("high", 3, 1),
        ("low", 1, 1),
    ],
)
def test_four_eyes_for_critical_priority_or_tier_4(priority, tier, needed):
    assert rules.approvals_needed(priority, tier) == needed


def test_sla_is_at_risk_past_80_percent_and_breached_past_100():
    at_risk, due = rules.sla_times(T0, 300)
    assert at_risk == T0 + timedelta(seconds=240) and due == T0 + timedelta(seconds=300)
    assert rules.sla_state(at_risk, due, T0 + timedelta(seconds=239)) == "ok"
    assert rules.sla_state(at_risk, due, T0 + timedelta(seconds=240)) == "at_risk"
    assert rules.sla_state(at_risk, due, T0 + timedelta(seconds=299)) == "at_risk"
    assert rules.sla_state(at_risk, due, T0 + timedelta(seconds=300)) == "breached"
    with pytest.raises(ValueError):
        rules.sla_times(T0, 0)


def test_a_request_is_past_due_from_its_expiry_instant():
    expires = rules.expiry(T0, 1800)
    assert expires == T0 + timedelta(minutes=30)
    assert not rules.is_past_due(expires, expires - timedelta(microseconds=1))
    assert rules.is_past_due(expires, expires)
    assert not rules.is_past_due(None, T0 + timedelta(days=365))  # reviews never expire


def test_module_has_no_django_import():
    code = (
        "import sys, approvals.rules; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
