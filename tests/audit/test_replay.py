"""Session replay (SPEC §7): every step with its action, redacted arguments, every layer's
result, the verdict and the approval with its decision; and the agent page's Verify tab."""

from __future__ import annotations

import uuid

import pytest

from audit import timelines
from console import services as console_services
from tests.audit.synthetic import Step, governed_session, procurement_steps, run_step
from tests.helpers import integrate


@pytest.fixture
def session(make_agent):
    session = governed_session(make_agent("procurement", tier=3), procurement_steps(), end="halted")
    integrate()
    return session


@pytest.fixture
def viewer(client, make_operator):
    client.force_login(make_operator("viewer"))
    return client


def test_steps_follow_the_session_with_approvals_attached(session):
    steps = timelines.session_replay(session.id)
    kinds = [s.event.event_type for s in steps]
    assert kinds[0] == "session.started" and kinds[-1] == "session.halted"
    assert [s.n for s in steps] == list(range(1, len(steps) + 1))
    assert [s.seq for s in steps] == sorted(s.seq for s in steps)
    actions = [s for s in steps if s.kind == "action"]
    assert [a.action["name"] for a in actions] == [step.name for step in procurement_steps()]
    approved, rejected = (a for a in actions if a.approval)
    assert approved.approval["outcome"] == "approved" and approved.completion["status"] == "ok"
    assert approved.approval["decisions"][0].payload["decided_by"] == "rita"
    assert rejected.approval["outcome"] == "rejected" and rejected.completion is None
    assert steps[0].position == 0 and steps[-1].position == 1000


def test_the_replay_page_shows_each_step(viewer, session):
    response = viewer.get(f"/audit/sessions/{session.id}/")
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        'data-testid="replay-play"',
        'data-testid="replay-step"',
        '<option value="0.5"',
        '<option value="2"',
        "contract.commit",
        "vendor:globex",
        "[redacted:email]",  # arguments as recorded, i.e. as redacted
        "rule:contract-burst",  # a layer's source
        "critical violation",
        "Approval",
        "vendor not vetted",  # the rejection's comment
        f"/audit/sessions/{session.id}/proof.json",
        "static/audit/replay.js",
    ):
        assert text in body, text
    assert "<script>" not in body and 'style="' not in body  # the CSP allows neither


def test_an_unknown_session_is_404(viewer, db):
    assert viewer.get(f"/audit/sessions/{uuid.uuid4()}/").status_code == 404
    assert viewer.get("/audit/sessions/nope/").status_code == 404


def test_a_session_with_no_events_yet_says_so(viewer, make_agent):
    agent = make_agent("quiet")
    session = console_services.open_session(agent)
    from audit.models import GovernanceEvent

    GovernanceEvent.objects.filter(session_id=session.id)  # it has its session.started
    body = viewer.get(f"/audit/sessions/{session.id}/").content.decode()
    assert "session.started" in body


def test_the_verify_tab_lists_sessions_with_replay_proof_and_incident_links(
    viewer, session, make_agent
):
    agent = session.agent
    other = console_services.open_session(agent)
    run_step(other, Step("invoice.read", "vendor:acme"))
    body = viewer.get(f"/agents/{agent.id}/tab/verify/").content.decode()
    assert body.count('data-testid="verify-session"') == 2
    for sid in (session.id, other.id):
        assert f"/audit/sessions/{sid}/" in body and f"/audit/sessions/{sid}/proof.json" in body
    assert f"/audit/incident/?agent={agent.id}" in body
    assert "python -m audit.verify" in body
    empty = viewer.get(f"/agents/{make_agent('idle').id}/tab/verify/").content.decode()
    assert "No sessions yet" in empty
