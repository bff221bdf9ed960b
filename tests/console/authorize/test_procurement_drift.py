"""The procurement drift scenario (shared/scenarios/procurement_drift.md) end to end: the
real ASGI server, the real HTTP API and ``warden_client``.

72 hours of traffic run in seconds: the pipeline's clock is replaced (the live server runs
in this process). Approvals are not installed yet, so REQUIRE_APPROVAL answers carry no
approval id: the commits are proposed step by step (``Session.propose``) and the verdicts
asserted from the server's answers. Once the approval queue exists, ``commit`` below can
become a ``@s.governed("contract.commit")`` call with a reviewer thread rejecting it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from assessments.services import assess_agent
from console import services
from console.authorize import clock
from console.authorize import services as authz
from console.authorize.models import Action
from tests.assessments.vectors import PROCUREMENT
from tests.console.authorize.conftest import PROCUREMENT_SCOPE
from tests.helpers import events_of
from warden_client import Blocked, Verdict, Warden

AMOUNTS = [95, 120, 180, 150, 210, 160, 175, 140, 230, 165, 190, 155, 170, 160]  # thousand USD
COMMIT_HOURS = [12, 16, 20, 26, 30, 34, 40, 44, 48, 54, 58, 62, 66, 70]
VENDORS = ["acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark"]


class SimulatedClock:
    def __init__(self) -> None:
        self.start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=80)
        self.hours = 0.0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(hours=self.hours)


@pytest.fixture
def procurement_agent(admin_user):
    agent = services.register_agent(
        name="procurement-agent", by=admin_user, scope=PROCUREMENT_SCOPE
    )
    assess_agent(agent, answers=PROCUREMENT["answers"], by=admin_user)
    authz.create_rule(
        by=admin_user,
        name="contract-total",
        kind="cumulative",
        pattern="contract.commit",
        window_seconds=72 * 3600,
        threshold="250000",
        verdict="require_approval",
        severity="major",
    )
    authz.create_rule(
        by=admin_user,
        name="contract-burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=24 * 3600,
        threshold=3,
        verdict="halt",
        severity="critical",
        priority=90,
    )
    authz.create_rule(
        by=admin_user,
        name="new-vendor",
        kind="first_seen",
        pattern="contract.commit",
        verdict="require_approval",
        severity="major",
    )
    _, key = services.issue_key(agent, by=admin_user)
    agent.refresh_from_db()
    return agent, key


@pytest.mark.slow
def test_the_procurement_agent_never_commits_without_a_human(
    asgi_server, procurement_agent, monkeypatch
):
    agent, key = procurement_agent
    assert (agent.risk_tier, agent.effective_tier) == (3, 3)
    sim = SimulatedClock()
    monkeypatch.setattr(clock, "now", sim.now)
    warden = Warden(asgi_server.url, key, timeout=20, retries=2, backoff=0.05)

    def governed_reads(s):
        @s.governed("invoice.read", target=lambda vendor, invoice: f"vendor:{vendor}")
        def read_invoice(vendor: str, invoice: str) -> dict:
            return {"invoice": invoice, "vendor": vendor}

        @s.governed("invoice.flag", target=lambda vendor, why: f"vendor:{vendor}")
        def flag_invoice(vendor: str, why: str) -> str:
            return f"flagged: {why}"

        @s.governed("review.route", target=lambda vendor, queue: f"vendor:{vendor}")
        def route(vendor: str, queue: str) -> str:
            return f"routed to {queue}"

        return read_invoice, flag_invoice, route

    # Hours 0–12: routine work, all allowed, every result reported.
    with warden.session(goal="review this week's invoices", workflow_id="ap-week-17") as s:
        read_invoice, flag_invoice, route = governed_reads(s)
        for i in range(40):
            sim.hours = i * 0.25
            read_invoice(VENDORS[i % len(VENDORS)], f"INV-{1000 + i}")
        for i in range(6):
            sim.hours = 10 + i * 0.3
            flag_invoice(VENDORS[i], "no purchase order")
            route(VENDORS[i], "ap-review")
    routine = Action.objects.filter(agent=agent)
    assert routine.count() == 52 and set(routine.values_list("verdict", flat=True)) == {"ALLOW"}
    assert routine.filter(result_status="ok").count() == 52

    # Hours 12–72: the drift. Each commit after a read of the vendor's invoice.
    decisions = []
    session = None
    payment_blocked = None
    for index, (hour, amount) in enumerate(zip(COMMIT_HOURS, AMOUNTS, strict=True)):
        if session is None or session.state != "open":
            session = warden.session(goal="process vendor contracts").open()
            read_invoice, _, _ = governed_reads(session)
        vendor = VENDORS[index % len(VENDORS)]
        sim.hours = hour - 0.5
        read_invoice(vendor, f"INV-{2000 + index}")
        if hour == 48:
            sim.hours = 50
            pay = session.governed(
                "payment.release",
                target=f"vendor:{vendor}",
                amount=Decimal("50000"),
                currency="USD",
            )(lambda: "paid")
            with pytest.raises(Blocked) as payment_blocked:
                pay()
        sim.hours = hour
        decision = session.propose(
            "contract.commit",
            target=f"vendor:{vendor}",
            args={"vendor": vendor, "amount": f"{amount * 1000}.00", "term_months": 12},
            amount=Decimal(amount * 1000),
            currency="USD",
            sensitive=True,
        )
        decisions.append(decision)
    session.end()

    verdicts = [d.verdict for d in decisions]
    assert Verdict.ALLOW not in verdicts
    assert verdicts[:3] == [Verdict.REQUIRE_APPROVAL] * 3
    assert all(d.approval_id is None for d in decisions[:3])  # no approval queue yet
    fourth = decisions[3]
    assert (fourth.verdict, fourth.source) == (Verdict.HALT, "rule:contract-burst")
    assert fourth.reason == "4 contract.commit within 24 h (more than 3 triggers)"
    assert set(verdicts[3:]) == {Verdict.HALT}
    assert sum(AMOUNTS) * 1000 == 2_300_000
    # The cumulative rule speaks from the third commit on (95k + 120k + 180k > 250k).
    third = Action.objects.get(pk=decisions[2].action_id)
    assert third.source in ("rule:contract-total", "rule:new-vendor", "tier")
    layers = {
        e["source"]: e["verdict"] for e in events_of("action.evaluated")[-1].payload["layers"]
    }
    assert layers["tier"] == "REQUIRE_APPROVAL"

    assert payment_blocked is not None
    assert (payment_blocked.value.source, payment_blocked.value.reason) == (
        "scope",
        "payment.release is excluded by the agent's scope",
    )

    commits = Action.objects.filter(agent=agent, name="contract.commit")
    assert commits.count() == 14 and not commits.filter(verdict="ALLOW").exists()
    halts = events_of("session.halted", agent_id=agent.id)
    assert halts and all("rule:contract-burst" in e.reason for e in halts)
    assert len(halts) == verdicts.count(Verdict.HALT)
    violations = [
        e for e in events_of("action.evaluated", agent_id=agent.id) if e.payload["violation"]
    ]
    assert {e.payload["violation"]["severity"] for e in violations} == {"critical", "major"}
    agent.refresh_from_db()
    assert agent.status == "active"  # tier 3: pause_on_halt is off unless set
    warden.close()


def test_the_example_agent_runs_against_the_real_server(asgi_server, procurement_agent):
    import subprocess
    import sys
    from pathlib import Path

    agent, key = procurement_agent
    script = Path(__file__).resolve().parents[3] / "examples" / "procurement_agent.py"
    completed = subprocess.run(
        [
            sys.executable,
            str(script),
            "--url",
            asgi_server.url,
            "--key",
            key,
            "--approval-timeout",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "contract.commit  REQUIRE_APPROVAL" in out
    assert "not committed: no approval request to wait on" in out
    assert "payment.release  BLOCK (scope: payment.release is excluded by the agent's scope)" in out
    names = list(
        Action.objects.filter(agent=agent).order_by("created_at").values_list("name", "verdict")
    )
    assert names[-2:] == [("contract.commit", "REQUIRE_APPROVAL"), ("payment.release", "BLOCK")]
    assert agent.sessions.get().status == "ended"
