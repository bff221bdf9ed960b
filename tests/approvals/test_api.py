"""SPEC §9 approvals API: the queue, decisions (first wins, 409 after), and the agent's read
of its own requests, with every bad input a specific 4xx."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import ApprovalRequest
from console import services as console_services
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import agent_client, client_for, events_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def keyed(agent, admin_user):
    _, key = console_services.issue_key(agent, by=admin_user)
    return agent_client(key)


def test_the_queue_lists_pending_requests_most_urgent_first(
    agent, session, make_operator, make_agent
):
    low = propose_needing_approval(agent, session, severity=None, target="vendor:low")
    high = propose_needing_approval(agent, session, severity="major", target="vendor:high")
    viewer = client_for(make_operator("viewer"))
    response = viewer.get("/api/v1/approvals?status=pending")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [str(high.id), str(low.id)]
    row = rows[0]
    assert row["status"] == "pending" and row["priority"] == "high"
    assert row["agent"]["name"] == "procurement" and row["agent"]["owner"] == "owner-olga"
    assert row["action_name"] == "contract.commit" and row["target"] == "vendor:high"
    assert row["amount"] == "120000.00" and row["sla_state"] == "ok"
    assert row["approvals_needed"] == 1 and row["approvals_given"] == 0
    assert row["expires_at"].endswith("Z") and row["decisions"] == [] and row["review"] is None


def test_filters_and_their_errors(agent, session, make_operator):
    propose_needing_approval(agent, session, severity="critical")
    propose_needing_approval(agent, session, severity=None)
    api = client_for(make_operator("viewer"))
    assert len(api.get("/api/v1/approvals?priority=critical").json()["results"]) == 1
    assert len(api.get(f"/api/v1/approvals?agent={agent.id}&tier=2").json()["results"]) == 2
    assert api.get("/api/v1/approvals?sla=breached").json()["results"] == []
    assert api.get("/api/v1/approvals?status=approved").json()["results"] == []
    bad = api.get("/api/v1/approvals?status=maybe&priority=urgent&tier=9&agent=x&limit=0")
    assert bad.status_code == 400
    assert set(bad.json()["error"]["fields"]) == {"status", "priority", "tier", "agent", "limit"}


def test_a_past_due_request_is_listed_as_expired(agent, session, api):
    approval = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert api.get("/api/v1/approvals").json()["results"] == []
    (row,) = api.get("/api/v1/approvals?status=expired").json()["results"]
    assert row["status"] == "expired"


def test_a_reviewer_decides_through_the_api(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    api = client_for(reviewer)
    response = api.post(
        f"/api/v1/approvals/{approval.id}/decide",
        {"decision": "approve", "comment": "fine"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "approved" and body["decided_by"] == "rita"
    assert body["decisions"][0]["decision"] == "approve"
    again = api.post(
        f"/api/v1/approvals/{approval.id}/decide",
        {"decision": "reject", "comment": "x"},
        format="json",
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"


def test_decide_refuses_bad_input_by_field(agent, session, reviewer):
    approval = propose_needing_approval(agent, session)
    api = client_for(reviewer)
    url = f"/api/v1/approvals/{approval.id}/decide"
    missing = api.post(url, {}, format="json")
    assert missing.status_code == 400 and "decision" in missing.json()["error"]["fields"]
    unknown = api.post(url, {"decision": "approve", "sudo": True}, format="json")
    assert unknown.json()["error"]["fields"] == {"sudo": ["Unknown field."]}
    no_reason = api.post(url, {"decision": "reject"}, format="json")
    assert no_reason.status_code == 400
    assert no_reason.json()["error"]["fields"] == {"comment": ["A reason is required to reject."]}
    wrong_kind = api.post(url, {"decision": "keep"}, format="json")
    assert wrong_kind.status_code == 400 and "decision" in wrong_kind.json()["error"]["fields"]
    nowhere = api.post(
        "/api/v1/approvals/not-a-uuid/decide", {"decision": "approve"}, format="json"
    )
    assert nowhere.status_code == 404
    assert nowhere.json()["error"]["code"] == "approval_not_found"
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_the_owner_is_refused_with_403(agent, session, owner):
    approval = propose_needing_approval(agent, session)
    response = client_for(owner).post(
        f"/api/v1/approvals/{approval.id}/decide", {"decision": "approve"}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "separation_of_duties"


def test_roles_without_decide_are_refused(agent, session, make_operator):
    approval = propose_needing_approval(agent, session)
    for role in ("viewer", "oncall", "compliance"):
        response = client_for(make_operator(role)).post(
            f"/api/v1/approvals/{approval.id}/decide", {"decision": "approve"}, format="json"
        )
        assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_a_review_is_resolved_through_the_same_endpoint(agent, reviewer):
    from approvals.services import open_review

    review = open_review(
        agent,
        cause_event_id=None,
        kind="velocity",
        reason="3 weeks down",
        previous_tier=2,
        new_tier=2,
    )
    api = client_for(reviewer)
    url = f"/api/v1/approvals/{review.id}/decide"
    assert api.post(url, {"decision": "approve"}, format="json").status_code == 400
    assert api.post(url, {"decision": "pause"}, format="json").status_code == 400  # reason
    response = api.post(url, {"decision": "pause", "comment": "slow down"}, format="json")
    assert response.status_code == 200
    assert response.json()["review"]["outcome"] == "pause"
    assert response.json()["status"] == "resolved"


# --- the agent side --------------------------------------------------------------------
def test_the_agent_reads_its_own_request(agent, session, keyed, reviewer):
    approval = propose_needing_approval(agent, session)
    pending = keyed.get(f"/api/v1/approvals/{approval.id}")
    assert pending.status_code == 200
    assert pending.json() == {
        "approval_id": str(approval.id),
        "status": "pending",
        "expires_at": pending.json()["expires_at"],
    }
    from approvals.services import decide

    decide(approval, by=reviewer, decision="reject", comment="vendor not vetted")
    body = keyed.get(f"/api/v1/approvals/{approval.id}?wait=0").json()
    assert body["status"] == "rejected" and body["decided_by"] == "rita"
    assert body["comment"] == "vendor not vetted" and body["decided_at"].endswith("Z")


def test_a_past_due_request_reads_expired_for_the_agent(agent, session, keyed):
    approval = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    body = keyed.get(f"/api/v1/approvals/{approval.id}").json()
    assert body["status"] == "expired" and "decided_by" not in body
    assert body["decided_at"] == body["expires_at"]


def test_another_agents_request_is_not_disclosed(agent, session, make_agent, admin_user):
    approval = propose_needing_approval(agent, session)
    stranger = make_agent("stranger")
    _, key = console_services.issue_key(stranger, by=admin_user)
    response = agent_client(key).get(f"/api/v1/approvals/{approval.id}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "approval_not_found"
    (denied,) = events_of("access.denied")
    assert denied.actor == f"agent:{stranger.id}"


def test_wait_must_be_0_to_60_seconds(agent, session, keyed):
    approval = propose_needing_approval(agent, session)
    for wait in ("61", "-1", "soon", "1.5"):
        response = keyed.get(f"/api/v1/approvals/{approval.id}?wait={wait}")
        assert response.status_code == 400, wait
        assert response.json()["error"]["fields"] == {"wait": ["An integer from 0 to 60."]}


def test_the_agent_endpoint_needs_an_agent_key(agent, session, api):
    approval = propose_needing_approval(agent, session)
    assert api.get(f"/api/v1/approvals/{approval.id}").status_code in (401, 403)
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v1/approvals/{approval.id}").status_code == 401
    bad = agent_client("wdn_live_nope").get(f"/api/v1/approvals/{approval.id}")
    assert bad.status_code == 401


def test_a_revoked_agent_is_told_so(agent, session, keyed, admin_user):
    approval = propose_needing_approval(agent, session)
    console_services.revoke_agent(agent, by=admin_user, reason="rogue")
    response = keyed.get(f"/api/v1/approvals/{approval.id}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "agent_revoked"


def test_the_schema_documents_the_approval_endpoints(api):
    schema = api.get("/api/schema/?format=json").json()
    paths = schema["paths"]
    assert "/api/v1/approvals" in paths
    assert "/api/v1/approvals/{approval_id}/decide" in paths
    status = paths["/api/v1/approvals/{approval_id}"]["get"]
    assert any(p["name"] == "wait" for p in status["parameters"])
