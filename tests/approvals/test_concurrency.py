"""SPEC §4: a decision is accepted once, whatever the timing.

Fifty reviewers decide the same request at the same moment, each in its own thread and
database connection: exactly one is accepted, 49 get 409, and the log holds one
``approval.decided``. On PostgreSQL the request's row lock serialises them; on SQLite the
IMMEDIATE transactions do.
"""

import threading

import pytest
from django.db import connection

from approvals import services
from approvals.models import ApprovalDecision, ApprovalRequest
from console import services as console_services
from console.errors import Conflict
from tests.approvals.helpers import propose_needing_approval
from tests.helpers import events_of

pytestmark = pytest.mark.django_db(transaction=True)

DECIDERS = 50


def _race(approval, reviewers, decide):
    barrier = threading.Barrier(len(reviewers))
    outcomes: list = [None] * len(reviewers)

    def run(index, reviewer):
        try:
            barrier.wait(timeout=30)
            decide(approval, reviewer, index)
            outcomes[index] = "accepted"
        except Conflict as exc:
            outcomes[index] = (409, exc.code)
        except Exception as exc:  # anything else is a bug the test must show
            outcomes[index] = repr(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=run, args=(i, r), name=f"decider-{i}")
        for i, r in enumerate(reviewers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


@pytest.fixture
def fifty_reviewers(make_operator):
    return [make_operator("reviewer", username=f"reviewer-{i:02d}") for i in range(DECIDERS)]


def test_fifty_simultaneous_decisions_one_wins(make_agent, admin_user, fifty_reviewers):
    agent = make_agent("contested", owner=admin_user)
    session = console_services.open_session(agent)
    approval = propose_needing_approval(agent, session)

    def decide(request, reviewer, index):
        if index % 2:
            services.decide(request, by=reviewer, decision="approve")
        else:
            services.decide(request, by=reviewer, decision="reject", comment=f"no ({index})")

    outcomes = _race(approval, fifty_reviewers, decide)
    accepted = [o for o in outcomes if o == "accepted"]
    refused = [o for o in outcomes if o == (409, "already_decided")]
    assert len(accepted) == 1 and len(refused) == DECIDERS - 1, outcomes
    decided = ApprovalRequest.objects.get(pk=approval.pk)
    assert decided.status in {"approved", "rejected"}
    (event,) = events_of("approval.decided")
    assert event.result == decided.status
    assert event.actor == f"user:{decided.decided_by.get_username()}"
    assert ApprovalDecision.objects.filter(request=approval).count() == 1


def test_fifty_simultaneous_approvals_under_four_eyes_need_exactly_two(
    make_agent, admin_user, fifty_reviewers
):
    agent = make_agent("contested-critical", owner=admin_user)
    session = console_services.open_session(agent)
    approval = propose_needing_approval(agent, session, severity="critical")
    assert approval.approvals_needed == 2

    def decide(request, reviewer, index):
        services.decide(request, by=reviewer, decision="approve")

    outcomes = _race(approval, fifty_reviewers, decide)
    assert outcomes.count("accepted") == 2, outcomes
    assert outcomes.count((409, "already_decided")) == DECIDERS - 2, outcomes
    assert ApprovalRequest.objects.get(pk=approval.pk).status == "approved"
    assert [e.result for e in events_of("approval.decided")] == ["pending", "approved"]
