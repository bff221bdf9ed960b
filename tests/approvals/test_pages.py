"""The approval queue page (SPEC §4, §8): cards with everything a reviewer needs, filters,
HTMX partials, decisions with and without JavaScript, the header badge and the dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals import services
from approvals.models import ApprovalRequest
from console.models import Agent
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import events_of

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_reviewer(client, reviewer):
    client.force_login(reviewer)
    return client


def test_the_queue_shows_what_a_reviewer_needs(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session, args={"vendor": "acme", "po": "PO-77"})
    page = as_reviewer.get("/approvals/").content.decode()
    assert f'id="approval-{approval.id}"' in page
    for needle in (
        "contract.commit",  # action
        "vendor:acme",  # target
        "PO-77",  # redacted args
        "120000.00 USD",  # amount
        "contract.commit amounts over USD 250,000 within 72h",  # why
        "rule:contract-cumulative",  # source
        "procurement",  # agent
        'data-testid="approve-',
        'data-testid="reject-',
        "Recent actions",
        "/ws/approvals/",  # reviewers get the queue socket
        "approvals/queue.js",
    ):
        assert needle in page, needle
    # The agent's recent history comes from the log (action.evaluated).
    assert "REQUIRE_APPROVAL" in page


def test_an_empty_queue_says_so(as_reviewer):
    page = as_reviewer.get("/approvals/").content.decode()
    assert "No pending approvals" in page


def test_filters_narrow_the_cards(as_reviewer, agent, session):
    critical = propose_needing_approval(agent, session, severity="critical", target="vendor:c")
    low = propose_needing_approval(agent, session, severity=None, target="vendor:l")
    page = as_reviewer.get("/approvals/?priority=critical").content.decode()
    assert str(critical.id) in page and str(low.id) not in page
    page = as_reviewer.get("/approvals/?sla=breached").content.decode()
    assert "Nothing matches these filters" in page
    page = as_reviewer.get(f"/approvals/?agent={agent.id}&tier=2").content.decode()
    assert str(critical.id) in page and str(low.id) in page
    page = as_reviewer.get("/approvals/?tier=7").content.decode()
    assert "tier: One of 1, 2, 3, 4." in page


def test_the_htmx_refetch_returns_only_the_cards(as_reviewer, agent, session):
    propose_needing_approval(agent, session)
    response = as_reviewer.get("/approvals/?part=cards", **HTMX)
    html = response.content.decode()
    assert html.lstrip().startswith('<div class="queue-body"') and "<html" not in html


def test_the_filter_form_gets_the_cards_under_a_plain_url(as_reviewer, agent, session):
    propose_needing_approval(agent, session)
    response = as_reviewer.get("/approvals/?priority=high", HTTP_HX_TARGET="queue", **HTMX)
    assert response.content.decode().lstrip().startswith('<div class="queue-body"')


def test_a_breached_sla_is_marked(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session)
    ApprovalRequest.objects.filter(pk=approval.pk).update(
        sla_at_risk_at=timezone.now() - timedelta(minutes=2),
        sla_due_at=timezone.now() - timedelta(minutes=1),
    )
    page = as_reviewer.get("/approvals/").content.decode()
    assert "sla-breached" in page and "SLA breached" in page


def test_viewers_read_the_queue_without_decision_buttons(client, make_operator, agent, session):
    propose_needing_approval(agent, session)
    client.force_login(make_operator("viewer"))
    page = client.get("/approvals/").content.decode()
    assert "contract.commit" in page and 'data-testid="approve-' not in page
    assert "/ws/live/" in page and "/ws/approvals/" not in page


def test_approve_from_the_card_with_htmx(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session)
    response = as_reviewer.post(
        f"/approvals/{approval.id}/decide/", {"decision": "approve", "comment": "ok"}, **HTMX
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<article") and "Approved: the agent may run" in html
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"


def test_approve_without_javascript_redirects_back(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session)
    response = as_reviewer.post(f"/approvals/{approval.id}/decide/", {"decision": "approve"})
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    again = as_reviewer.post(f"/approvals/{approval.id}/decide/", {"decision": "approve"})
    assert again.status_code == 302
    page = as_reviewer.get("/approvals/").content.decode()
    assert "already been decided" in page


def test_the_owner_is_refused_on_the_card(client, owner, agent, session):
    approval = propose_needing_approval(agent, session)
    client.force_login(owner)
    page = client.get("/approvals/").content.decode()
    assert "You own this agent" in page and "disabled" in page
    response = client.post(f"/approvals/{approval.id}/decide/", {"decision": "approve"}, **HTMX)
    assert response.status_code == 403
    assert "separation of duties" in response.content.decode()
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"


def test_reject_asks_for_the_reason_in_a_dialog(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session)
    dialog = as_reviewer.get(f"/approvals/{approval.id}/reject/", **HTMX)
    assert dialog.status_code == 200 and 'name="comment"' in dialog.content.decode()
    missing = as_reviewer.post(
        f"/approvals/{approval.id}/decide/", {"decision": "reject", "dialog": "1"}, **HTMX
    )
    assert missing.status_code == 400
    assert "A reason is required to reject." in missing.content.decode()
    done = as_reviewer.post(
        f"/approvals/{approval.id}/decide/",
        {"decision": "reject", "dialog": "1", "comment": "not budgeted"},
        **HTMX,
    )
    assert done.status_code == 200 and "queueChanged" in done["HX-Trigger"]
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "rejected"


def test_the_reject_page_works_without_javascript(as_reviewer, agent, session):
    approval = propose_needing_approval(agent, session)
    page = as_reviewer.get(f"/approvals/{approval.id}/reject/")
    assert page.status_code == 200 and "<html" in page.content.decode()


def test_a_decided_request_offers_no_dialog(as_reviewer, agent, session, reviewer2):
    approval = propose_needing_approval(agent, session)
    services.decide(approval, by=reviewer2, decision="approve")
    response = as_reviewer.get(f"/approvals/{approval.id}/reject/", **HTMX)
    assert response.status_code == 409 and "already been decided" in response.content.decode()


def test_four_eyes_shows_progress_and_who_approved(as_reviewer, agent, session, reviewer2):
    approval = propose_needing_approval(agent, session, severity="critical")
    services.decide(approval, by=reviewer2, decision="approve")
    page = as_reviewer.get("/approvals/").content.decode()
    assert "Four-eyes: 1 of 2 approvals" in page and "approved by rafa" in page


def test_a_review_card_offers_keep_pause_and_revoke(as_reviewer, agent):
    review = services.open_review(
        agent,
        cause_event_id=None,
        kind="tier_worsened",
        reason="trust fell",
        previous_tier=2,
        new_tier=3,
    )
    page = as_reviewer.get("/approvals/").content.decode()
    assert "Re-authorization review" in page
    for testid in ("keep-", "review-pause-", "review-revoke-"):
        assert f'data-testid="{testid}{review.id}"' in page
    wrong = as_reviewer.post(
        f"/approvals/{review.id}/decide/",
        {"decision": "revoke", "dialog": "1", "comment": "rogue", "confirm_name": "nope"},
        **HTMX,
    )
    assert wrong.status_code == 400 and "Type the agent" in wrong.content.decode()
    done = as_reviewer.post(
        f"/approvals/{review.id}/decide/",
        {"decision": "revoke", "dialog": "1", "comment": "rogue", "confirm_name": "procurement"},
        **HTMX,
    )
    assert done.status_code == 200
    assert Agent.objects.get(pk=agent.pk).status == "revoked"
    assert events_of("agent.revoked")[0].reason == "re-authorization review: rogue"


def test_the_header_badge_counts_pending_requests(as_reviewer, agent, session):
    propose_needing_approval(agent, session)
    propose_needing_approval(agent, session, target="vendor:b")
    page = as_reviewer.get("/agents/").content.decode()
    assert 'data-testid="pending-badge">2</span>' in page
    assert 'id="pending-badge-live"' in page and 'hx-trigger="queueChanged from:body' in page
    badge = as_reviewer.get("/approvals/badge/", **HTMX).content.decode()
    assert badge.startswith('<span id="pending-badge"') and ">2</span>" in badge


def test_the_dashboard_shows_pending_approvals_and_the_queue_load(as_reviewer, agent, session):
    propose_needing_approval(agent, session, severity="critical")
    page = as_reviewer.get("/").content.decode()
    assert "Pending approvals" in page and 'data-testid="dashboard-pending">1<' in page
    assert "Queue load" in page and "<svg" in page
    panel = as_reviewer.get("/approvals/panel/", **HTMX).content.decode()
    assert "Pending approvals" in panel and 'id="approvals-panel"' not in panel


def test_decide_needs_the_reviewer_role(client, make_operator, agent, session):
    approval = propose_needing_approval(agent, session)
    client.force_login(make_operator("oncall"))
    response = client.post(f"/approvals/{approval.id}/decide/", {"decision": "approve"})
    assert response.status_code == 403
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "pending"
