"""The procurement drift scenario (shared/scenarios/procurement_drift.md), trust's side.

The pipeline and the approval queue are not on this branch, so their events come from
``tests.trust.events`` with the verdicts the scenario prescribes. What trust must show:
the behavioural score falls with each violation, the trust tier worsens (3 → 4) and a
re-authorization review is opened for the queue, with an alert; and a rebuild from the
log agrees to the cent.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from unittest import mock

from console.models import Agent
from tests.helpers import events_of
from tests.trust import events as ev
from tests.trust.events import T0, at
from trust import services
from trust.models import Alert, TrustHistory

SCOPE = {
    "allowed_actions": [
        "invoice.read",
        "invoice.flag",
        "review.route",
        "contract.draft",
        "contract.commit",
    ],
    "allowed_targets": ["vendor:*"],
    "excluded_actions": ["payment.*"],
    "sensitive_actions": ["contract.commit"],
}
AMOUNTS = [95, 120, 180, 150, 210, 160, 175, 140, 230, 165, 190, 155, 170, 160]  # thousands
VENDORS = ["vendor:acme", "vendor:globex", "vendor:initech", "vendor:umbrella"]


def hours(n: float):
    return T0 + timedelta(hours=n)


def test_the_drifting_procurement_agent_loses_trust_and_goes_back_to_a_human(admin_user):
    agent = ev.register_assessed(admin_user, "procurement-agent", scope=SCOPE)
    assert (agent.risk_percent, agent.risk_tier) == (Decimal("65.27"), 3)
    assert (agent.trust_score, agent.trust_tier) == (Decimal("73.89"), 3)
    behavioural = [Agent.objects.get(pk=agent.pk).behavioral]

    def after_violation():
        value = Agent.objects.get(pk=agent.pk).behavioral
        assert value < behavioural[-1], "each violation lowers the behavioural score"
        behavioural.append(value)

    with mock.patch("approvals.services.open_review") as open_review:
        # Hours 0–12: reviewing invoices, all allowed.
        with at(hours(0)):
            session = ev.open_session(agent)
        for n in range(52):
            name = "invoice.read" if n < 40 else "invoice.flag" if n < 46 else "review.route"
            with at(hours(n * 12 / 52)):
                ev.evaluated(agent, session, name=name, target="vendor:acme")
        with at(hours(12)):
            ev.close_session(session)
        assert Agent.objects.get(pk=agent.pk).alignment == Decimal("100.00")

        # Hours 12–72: commits. Each needs a human (tier 3 preset, cumulative and
        # first-seen rules); the 4th inside 24 h trips the rate rule (HALT, critical).
        commits = iter(enumerate(AMOUNTS))
        session = None
        for day_start in (12, 36, 60):
            if Agent.objects.get(pk=agent.pk).status == "paused":
                break  # halted at effective tier 4: pause on halt (SPEC §1)
            with at(hours(day_start)):
                session = ev.open_session(agent)
            for slot in range(4):
                index, amount = next(commits, (None, None))
                if index is None:
                    break
                moment = hours(day_start + 1 + slot * 3)
                with at(moment):
                    if slot < 3:
                        ev.evaluated(
                            agent,
                            session,
                            name="contract.commit",
                            target=VENDORS[index % 4],
                            verdict="REQUIRE_APPROVAL",
                            amount=f"{amount}000.00",
                        )
                        # Reviewers catch on: the later commits are rejected or left to expire.
                        if index >= 3:
                            (ev.decided if index % 2 else ev.expired)(agent)
                        else:
                            ev.decided(agent, result="approved")
                    else:
                        ev.violation(
                            agent,
                            session,
                            "critical",
                            name="contract.commit",
                            target=VENDORS[index % 4],
                            source="rule:contract-burst",
                            amount=f"{amount}000.00",
                        )
                        after_violation()
            if day_start == 36:
                with at(hours(50)):  # the payment.release attempt: excluded by scope
                    ev.violation(
                        agent,
                        session,
                        "major",
                        name="payment.release",
                        source="scope",
                        in_scope=False,
                    )
                    after_violation()
            with at(hours(day_start + 12)):
                ev.close_session(session, "halted")

    agent = Agent.objects.get(pk=agent.pk)
    assert agent.status == "paused"
    assert agent.behavioral < Decimal("50")
    assert (agent.trust_tier, agent.effective_tier) == (4, 4)
    worsened = [e for e in events_of("tier.changed") if e.payload["to"] == 4]
    assert len(worsened) == 1 and worsened[0].payload["from"] == 3
    alert = Alert.objects.get(agent=agent, kind="tier_worsened")
    assert alert.is_open and (alert.previous_tier, alert.new_tier) == (3, 4)
    review_calls = [c for c in open_review.call_args_list if c.kwargs["kind"] == "tier_worsened"]
    assert len(review_calls) == 1
    assert review_calls[0].kwargs["new_tier"] == 4
    kinds = set(TrustHistory.objects.filter(agent=agent).values_list("change_type", flat=True))
    assert {"reassessment", "violation", "approval_outcome", "alignment"} <= kinds

    services.advance_trust_clock(now=hours(96))
    report = services.rebuild_trust(now=hours(96))
    assert (report.unchanged, report.corrected) == (1, 0)
