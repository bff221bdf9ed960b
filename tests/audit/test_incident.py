"""The incident timeline (SPEC §7): agent + window → every step in order, totals, proofs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from audit import timelines
from audit.services import record
from console import services as console_services
from tests.audit.synthetic import Step, governed_session, procurement_steps
from tests.helpers import integrate


@pytest.fixture
def drift(make_agent, admin_user):
    agent = make_agent("procurement", tier=3)
    first = governed_session(agent, procurement_steps(), end="halted")
    second = governed_session(
        agent,
        [
            Step("contract.commit", "vendor:acme", "ALLOW", amount="50000.00", args={"c": "C-9"}),
            Step(
                "contract.commit",
                "vendor:acme",
                "REQUIRE_APPROVAL",
                amount="70000.00",
                approval="expired",
            ),
        ],
    )
    with transaction.atomic():
        record(
            "trust.changed",
            actor="system:trust.recompute",
            agent_id=agent.id,
            payload={
                "previous_score": "73.89",
                "new_score": "62.14",
                "previous_tier": 3,
                "new_tier": 3,
                "behavioral_delta": "-40.00",
                "alignment_delta": "0",
                "change_type": "violation",
                "cause_event_id": None,
            },
        )
        record(
            "tier.changed",
            actor="system:trust.recompute",
            agent_id=agent.id,
            payload={"from": 3, "to": 4, "trust_score": "48.00", "effective_tier": 4},
        )
    console_services.pause_agent(agent, by=admin_user, reason="drifting into contracts")
    integrate()
    return {"agent": agent, "sessions": [first, second]}


def test_totals_of_the_window(drift):
    agent = drift["agent"]
    now = timezone.now()
    report = timelines.incident_report(
        agent.id, now - timedelta(hours=1), now + timedelta(seconds=1)
    )
    t = report.totals
    assert t.actions == 8
    assert t.verdicts == {"ALLOW": 3, "REQUIRE_APPROVAL": 3, "BLOCK": 1, "HALT": 1}
    assert t.violations == {"major": 1, "critical": 1}
    # proposed: every amount; committed: ran (allowed or approved) and reported ok.
    assert t.proposed["USD"] == Decimal("635000.00")
    assert t.committed["USD"] == Decimal("145000.00")  # 95k approved + 50k allowed
    assert t.blocked["USD"] == Decimal("300000.00")
    assert t.approvals_requested == 3
    assert t.approvals == {"approved": 1, "rejected": 1, "expired": 1}
    assert t.containment == 2  # the halt and the pause
    assert (t.trust_first, t.trust_last) == ("73.89", "62.14")
    assert t.tier_changes == [(3, 4)]
    assert t.sessions == 2 and {s["status"] for s in report.sessions} == {"halted", "ended"}
    seqs = [e["event"].log.seq for e in report.entries]
    assert seqs == sorted(seqs)


def test_the_window_bounds_the_report(drift):
    agent = drift["agent"]
    now = timezone.now()
    assert (
        timelines.incident_report(agent.id, now - timedelta(days=3), now - timedelta(days=2)).count
        == 0
    )


def test_the_page_is_printable_and_links_every_proof(client, make_operator, drift):
    client.force_login(make_operator("compliance"))
    agent = drift["agent"]
    start = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.get("/audit/incident/", {"agent": str(agent.id), "from": start})
    assert response.status_code == 200
    body = response.content.decode()
    for session in drift["sessions"]:
        assert f"/audit/sessions/{session.id}/proof.json" in body
        assert f"http://testserver/api/v1/sessions/{session.id}/proof" in body
    for text in (
        "145000.00 USD",
        "approvals requested",
        "1 granted",
        "critical",
        "data-print",
        "contract.commit",
        "payment.release",
        "agent.paused",
        "tier 3 → 4",
        "static/audit/audit.css",
        "static/audit/incident.js",
    ):
        assert text in body, text
    assert 'style="' not in body and "<script>" not in body


def test_the_form_and_its_errors(client, make_operator, drift):
    client.force_login(make_operator("viewer"))
    form = client.get("/audit/incident/")
    assert form.status_code == 200 and 'name="agent"' in form.content.decode()
    bad = client.get("/audit/incident/", {"agent": "x", "from": "soon"})
    assert bad.status_code == 400 and set(bad.context["errors"]) == {"agent", "from"}
    import uuid

    missing = client.get("/audit/incident/", {"agent": str(uuid.uuid4())})
    assert missing.status_code == 400 and "No such agent." in missing.content.decode()
