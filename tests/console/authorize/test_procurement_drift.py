"""The procurement drift scenario (shared/scenarios/procurement_drift.md) end to end: the
real ASGI server, the real HTTP API and ``warden_client``.

72 hours of traffic run in seconds: the pipeline's clock is replaced (the live server runs
in this process). Every commit is a ``@s.governed("contract.commit")`` call, so the agent
waits on its approval request; a reviewer thread plays the human in the queue: it rejects
every contract and approves the routine reads that the worsened trust tier sends to the
queue. The run ends with the incident timeline of the window and every session's proof
certificate checked by the offline verifier.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from approvals import services as approvals
from approvals.models import ApprovalRequest
from assessments.services import assess_agent
from audit import proofs, timelines, verify
from console import services
from console.authorize import clock
from console.authorize import services as authz
from console.authorize.models import Action
from console.errors import Conflict
from tests.assessments.vectors import PROCUREMENT
from tests.console.authorize.conftest import PROCUREMENT_SCOPE
from tests.helpers import events_of, integrate
from warden_client import ApprovalRejected, Blocked, Halted, Warden, WardenHTTPError

AMOUNTS = [95, 120, 180, 150, 210, 160, 175, 140, 230, 165, 190, 155, 170, 160]  # thousand USD
COMMIT_HOURS = [12, 16, 20, 26, 30, 34, 40, 44, 48, 54, 58, 62, 66, 70]
VENDORS = ["acme", "globex", "initech", "umbrella", "hooli", "soylent", "stark"]


class SimulatedClock:
    def __init__(self) -> None:
        self.start = timezone.now().replace(microsecond=0) - dt.timedelta(hours=80)
        self.hours = 0.0

    def now(self) -> dt.datetime:
        return self.start + dt.timedelta(hours=self.hours)


class Reviewer:
    """Humans in the approval queue, in a thread of their own: they reject every contract and
    approve any other action request; reviews (re-authorization) are left for the test.
    Tier 4 asks for two approvals, so there are two people."""

    REFUSAL = "no contract without procurement sign-off"

    def __init__(self, agent, *people) -> None:
        self.agent, self.people = agent, people
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="reviewer", daemon=True)

    def __enter__(self) -> Reviewer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)
        assert not self.errors, self.errors

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stopping.is_set():
                pending = ApprovalRequest.objects.filter(
                    agent=self.agent, kind="action", status="pending"
                )
                for request in pending:
                    commit = request.action_name == "contract.commit"
                    for person in self.people:
                        try:
                            request = approvals.decide(
                                request,
                                by=person,
                                decision="reject" if commit else "approve",
                                comment=self.REFUSAL if commit else "routine read",
                            )
                        except Conflict:
                            pass  # already voted, or decided by the other person
                        if request.status != "pending":
                            break
                time.sleep(0.05)
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            connection.close()


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
    asgi_server, procurement_agent, make_operator, monkeypatch
):
    agent, key = procurement_agent
    assert (agent.risk_tier, agent.effective_tier) == (3, 3)
    sim = SimulatedClock()
    monkeypatch.setattr(clock, "now", sim.now)
    warden = Warden(asgi_server.url, key, timeout=20, retries=2, backoff=0.05)
    committed: list[str] = []
    started = timezone.now()

    def governed_steps(s):
        @s.governed(
            "invoice.read", target=lambda vendor, invoice: f"vendor:{vendor}", approval_timeout=30
        )
        def read_invoice(vendor: str, invoice: str) -> dict:
            return {"invoice": invoice, "vendor": vendor}

        @s.governed("invoice.flag", target=lambda vendor, why: f"vendor:{vendor}")
        def flag_invoice(vendor: str, why: str) -> str:
            return f"flagged: {why}"

        @s.governed("review.route", target=lambda vendor, queue: f"vendor:{vendor}")
        def route(vendor: str, queue: str) -> str:
            return f"routed to {queue}"

        @s.governed(
            "contract.commit",
            target=lambda vendor, amount: f"vendor:{vendor}",
            amount=lambda vendor, amount: Decimal(amount),
            currency="USD",
            sensitive=True,
            approval_timeout=30,
        )
        def commit(vendor: str, amount: str) -> str:
            committed.append(vendor)  # would sign the contract
            return f"committed {vendor}"

        return read_invoice, flag_invoice, route, commit

    # Hours 0–12: routine work, all allowed, every result reported.
    with warden.session(goal="review this week's invoices", workflow_id="ap-week-17") as s:
        read_invoice, flag_invoice, route, _ = governed_steps(s)
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
    assert ApprovalRequest.objects.filter(agent=agent).count() == 0

    # Hours 12–72: the drift. Each commit after a read of the vendor's invoice; a human
    # rejects every contract the queue shows.
    outcomes: list[str] = []
    session = None
    payment_blocked = None
    people = (make_operator("reviewer", username="ap-reviewer"), make_operator("reviewer"))
    with Reviewer(agent, *people):
        for index, (hour, amount) in enumerate(zip(COMMIT_HOURS, AMOUNTS, strict=True)):
            if session is None or session.state != "open":
                try:
                    session = warden.session(goal="process vendor contracts").open()
                except WardenHTTPError as refused:
                    assert (refused.status, refused.code) == (409, "agent_paused")
                    outcomes.append("paused")
                    continue
                read_invoice, _, _, commit = governed_steps(session)
            vendor = VENDORS[index % len(VENDORS)]
            sim.hours = hour - 0.5
            read_invoice(vendor, f"INV-{2000 + index}")
            if index == 1:  # the payment attempt (before the agent is contained)
                sim.hours = hour - 0.25
                pay = session.governed(
                    "payment.release",
                    target=f"vendor:{vendor}",
                    amount=Decimal("50000"),
                    currency="USD",
                )(lambda: "paid")
                with pytest.raises(Blocked) as payment_blocked:
                    pay()
            sim.hours = hour
            try:
                commit(vendor, f"{amount * 1000}.00")
                outcomes.append("committed")
            except ApprovalRejected as rejected:
                assert rejected.comment == Reviewer.REFUSAL
                assert rejected.decided_by == "ap-reviewer"
                outcomes.append("rejected")
            except Halted as halted:
                assert halted.source == "rule:contract-burst"
                outcomes.append("halted")
        session.end()
    warden.close()

    # No contract was signed: each one went to a human, who refused, or was halted.
    # The first three go to a human, who refuses them; the fourth inside 24 h halts the
    # session; the halts drop trust to tier 4, where a halt also pauses the agent, and the
    # paused agent cannot open another session for the remaining eight.
    assert committed == []
    assert outcomes == ["rejected"] * 3 + ["halted"] * 3 + ["paused"] * 8
    commits = Action.objects.filter(agent=agent, name="contract.commit").order_by("created_at")
    assert commits.count() == 6 and not commits.filter(verdict="ALLOW").exists()
    asked = ApprovalRequest.objects.filter(agent=agent, action_name="contract.commit")
    assert asked.count() == outcomes.count("rejected")
    assert set(asked.values_list("status", flat=True)) == {"rejected"}
    assert set(
        commits.filter(verdict="REQUIRE_APPROVAL").values_list("result_status", flat=True)
    ) <= {
        None,
        "",
        "not_run",
        "error",
    }
    fourth = commits[3]
    assert (fourth.verdict, fourth.source) == ("HALT", "rule:contract-burst")
    assert fourth.reason == "4 contract.commit within 24 h (more than 3 triggers)"
    assert sum(AMOUNTS) * 1000 == 2_300_000

    assert payment_blocked is not None
    assert (payment_blocked.value.source, payment_blocked.value.reason) == (
        "scope",
        "payment.release is excluded by the agent's scope",
    )

    halts = events_of("session.halted", agent_id=agent.id)
    assert halts and all("rule:contract-burst" in e.reason for e in halts)
    assert len(halts) == outcomes.count("halted")
    violations = [
        e for e in events_of("action.evaluated", agent_id=agent.id) if e.payload["violation"]
    ]
    assert {e.payload["violation"]["severity"] for e in violations} == {"critical", "major"}

    # Trust: the behavioural score fell with the violations, the tier worsened and a
    # re-authorization review waits in the queue.
    agent.refresh_from_db()
    assert agent.effective_tier == 4
    assert agent.status == "paused"  # tier 4: a halt pauses the agent
    paused = events_of("agent.paused", agent_id=agent.id)
    assert len(paused) == 1 and "rule:contract-burst" in paused[0].reason, paused[0].reason
    tier_changes = events_of("tier.changed", agent_id=agent.id)
    assert tier_changes and tier_changes[0].payload["to"] == 4
    review = ApprovalRequest.objects.get(agent=agent, kind="reauthorization")
    assert (review.status, review.review_kind) == ("pending", "tier_worsened")
    assert (review.previous_tier, review.new_tier) == (3, 4)

    # The incident timeline of the run: every step, in log order, with the totals. (The
    # log's timestamps are the real ones; only the pipeline's clock was compressed.)
    integrate()
    report = timelines.incident_report(agent.id, started, timezone.now())
    totals = report.totals
    assert totals.actions == Action.objects.filter(agent=agent).count() == 52 + 6 + 1 + 6
    assert totals.verdicts["ALLOW"] >= 52 and totals.verdicts.get("BLOCK") == 1
    proposed = sum(AMOUNTS[:6]) * 1000 + 50000  # the contracts tried + the payment
    assert totals.proposed["USD"] == Decimal(proposed)
    assert totals.committed.get("USD", Decimal(0)) == 0
    assert totals.approvals["rejected"] == outcomes.count("rejected")
    assert totals.tier_changes[0] == (3, 4)
    seqs = [e["event"].log.seq for e in report.entries]
    assert seqs == sorted(seqs)

    # Every session's proof certificate verifies offline, closed.
    sessions = list(agent.sessions.all())
    assert len(sessions) == 1 + outcomes.count("halted")  # routine, then one per halt
    for each in sessions:
        certificate = proofs.certificate(each.id)
        assert verify.verify(certificate, require_closed=True).failures == []


def test_the_example_agent_runs_against_the_real_server(
    asgi_server, procurement_agent, make_operator
):
    import subprocess
    import sys
    from pathlib import Path

    agent, key = procurement_agent
    script = Path(__file__).resolve().parents[3] / "examples" / "procurement_agent.py"
    with Reviewer(agent, make_operator("reviewer", username="ap-reviewer")):  # tier 3: one
        completed = subprocess.run(
            [
                sys.executable,
                str(script),
                "--url",
                asgi_server.url,
                "--key",
                key,
                "--approval-timeout",
                "20",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    out = completed.stdout
    assert "contract.commit  REQUIRE_APPROVAL" in out
    assert f"not committed: approval rejected — {Reviewer.REFUSAL}" in out, out
    assert "payment.release  BLOCK (scope: payment.release is excluded by the agent's scope)" in out
    names = list(
        Action.objects.filter(agent=agent).order_by("created_at").values_list("name", "verdict")
    )
    assert names[-2:] == [("contract.commit", "REQUIRE_APPROVAL"), ("payment.release", "BLOCK")]
    request = ApprovalRequest.objects.get(agent=agent, action_name="contract.commit")
    assert (request.status, request.decided_by.username) == ("rejected", "ap-reviewer")
    assert agent.sessions.get().status == "ended"
