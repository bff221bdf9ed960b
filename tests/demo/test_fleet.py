"""The demo fleet (``python -m examples.demo_fleet``) against the real server on uvicorn.

One bounded run (at most ~30 s) of all four agents, fast-paced, after
``bootstrap_demo``; meanwhile the test plays the operators through the services — a
reviewer approves a contract, on-call pauses the support agent and revokes the
observability agent — and then checks each story's outcome in the database and the
fleet's printed lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from django.contrib.auth import get_user_model

from approvals import services as approvals
from approvals.models import ApprovalRequest
from audit.models import GovernanceEvent
from console import services
from console.authorize.models import Action
from console.models import Agent, AgentSession
from tests.demo.conftest import ROOT, Spawned, wait_for

FLEET_SECONDS = 30


class Fleet(Spawned):
    """The fleet as a subprocess, its lines collected as they are printed."""

    def __init__(self, url: str, keys: Path) -> None:
        super().__init__(
            [
                sys.executable,
                "-m",
                "examples.demo_fleet",
                "--url",
                url,
                "--keys",
                str(keys),
                "--pace",
                "0.05",
                "--hour",
                "0.05",
                "--rest",
                "1",
                # 12 invoices instead of the scenario's 40 before the contracts: the same
                # story, with fewer routine reads to wait through.
                "--invoices",
                "12",
                "--approval-timeout",
                "2",
                "--backoff",
                "0.5",
                "--duration",
                str(FLEET_SECONDS),
            ],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def said(self, who: str, text: str) -> bool:
        return any(line.split()[1:2] == [who] and text in line for line in list(self.lines))


def pending(agent_name: str, action_name: str):
    return (
        ApprovalRequest.objects.filter(
            agent__name=agent_name, action_name=action_name, status="pending"
        )
        .order_by("created_at")
        .first()
    )


def test_the_fleet_plays_every_story_and_obeys_the_operators(asgi_server, demo_files, bootstrap):
    document, _ = bootstrap()
    canary_token = document["canary"]
    User = get_user_model()
    admin = User.objects.get(username="admin")
    reviewer = User.objects.get(username="reviewer")
    oncall = User.objects.get(username="oncall")
    support = Agent.objects.get(name="support-agent")
    observability = Agent.objects.get(name="observability-agent")
    seen: dict = {}

    # What the operators do, each once, as soon as the fleet gives them the occasion.
    def approve_contract():
        request = pending("procurement-agent", "contract.commit")
        if request:
            approvals.decide(request, by=reviewer, decision="approve", comment="budgeted")
            seen["contract"] = request
            return True

    def reject_refund():
        request = pending("support-agent", "refund.issue")
        if request:
            approvals.decide(request, by=reviewer, decision="reject", comment="already refunded")
            seen["refund"] = request
            return True

    def pause_support():
        if "refund" in seen:  # its open session runs to its end (SPEC §1)
            services.pause_agent(support, by=oncall, reason="demo test: pause")
            seen["paused_at"] = time.time()
            return True

    def approve_rollback():  # tier 4: four-eyes, two distinct approvers
        request = pending("observability-agent", "deploy.rollback")
        if request:
            approvals.decide(request, by=admin, decision="approve", comment="go")
            approvals.decide(request, by=reviewer, decision="approve", comment="agreed")
            seen["rollback"] = request
            return True

    def revoke_observability():  # the next night's rollback: on-call revokes instead
        request = pending("observability-agent", "deploy.rollback")
        if "rollback" in seen and request and request.pk != seen["rollback"].pk:
            services.revoke_agent(observability, by=oncall, reason="demo test: revoke")
            seen["second_rollback"] = request
            return True

    todo = [approve_contract, reject_refund, pause_support, approve_rollback, revoke_observability]

    fleet = Fleet(asgi_server.url, demo_files[0])

    def played() -> bool:
        for task in list(todo):
            if task():
                todo.remove(task)
        return not todo and (
            Action.objects.filter(
                agent__name="procurement-agent", name="contract.commit", verdict="HALT"
            ).exists()
            and Action.objects.filter(agent__name="inbox-summariser", verdict="HALT").exists()
            and fleet.said("procurement", "approved by reviewer — budgeted")
            and fleet.said("support", "rejected by reviewer: already refunded")
            and fleet.said("support", "paused")
            and fleet.said("observability", "rolled checkout back")
            and fleet.said("observability", "revoked")
        )

    try:
        wait_for(played, FLEET_SECONDS, "every story")
    except AssertionError as timed_out:
        fleet.stop()
        raise AssertionError(
            f"not done: {[t.__name__ for t in todo]}\n{fleet.output}"
        ) from timed_out
    finally:
        fleet.stop()
    output = fleet.output
    assert "Traceback" not in output, output
    request = seen["contract"]

    # Procurement: no contract.commit is ever ALLOWed; only the approved one ran.
    commits = Action.objects.filter(agent__name="procurement-agent", name="contract.commit")
    verdicts = set(commits.values_list("verdict", flat=True))
    assert verdicts <= {"REQUIRE_APPROVAL", "HALT"}, verdicts
    halted = commits.filter(verdict="HALT").order_by("created_at").first()
    assert halted.source == "rule:demo-contract-burst-24h"
    assert commits.filter(created_at__lte=halted.created_at).count() == 4
    ran = commits.filter(result_status="ok")
    assert list(ran.values_list("id", flat=True)) == [request.action_id]
    completed = GovernanceEvent.objects.get(id=ran.get().result_event_id)
    assert completed.event_type == "action.completed"
    assert completed.payload["action_id"] == str(request.action_id)
    assert ApprovalRequest.objects.get(pk=request.pk).used_at is not None

    # Support: the reply went out redacted, and that is what Warden stored.
    replies = list(Action.objects.filter(agent__name="support-agent", name="reply.send"))
    assert replies
    for reply in replies:
        body = reply.args["body"]
        assert "[REDACTED:email]" in body and "[REDACTED:phone]" in body
        assert "jane.doe@example.com" not in body and "555 0134" not in body
    assert "[REDACTED:email]" in output
    read_results = Action.objects.filter(
        agent=support, name="ticket.read", result_status="ok"
    ).values_list("result_event_id", flat=True)
    reads = GovernanceEvent.objects.filter(id__in=list(read_results))
    assert reads.exists()
    stored = json.dumps([e.payload["output"] for e in reads])
    assert "ticket" in stored and "@example." not in stored and "555 0" not in stored
    # …and once paused, it opened no new session (it backed off instead).
    paused_at = _aware(seen["paused_at"])
    assert not AgentSession.objects.filter(agent=support, started_at__gt=paused_at).exists()
    # The rejected refund never ran.
    refund = Action.objects.get(id=seen["refund"].action_id)
    assert (refund.verdict, refund.result_status) == ("REQUIRE_APPROVAL", None)

    # Observability: the rollback waited for two approvers, then ran; revoked, it stopped.
    first, second = seen["rollback"], seen["second_rollback"]
    assert (first.approvals_needed, first.effective_tier) == (2, 4)
    assert first.decisions.count() == 2
    assert Action.objects.get(id=first.action_id).result_status == "ok"
    assert ApprovalRequest.objects.get(pk=second.pk).status == "cancelled"
    assert Action.objects.get(id=second.action_id).result_status is None
    assert Agent.objects.get(pk=observability.pk).status == "revoked"

    # Summariser: the canary in an outgoing e-mail HALTs it; the token is not stored.
    leaks = list(Action.objects.filter(agent__name="inbox-summariser", name="email.send"))
    assert leaks
    for leak in leaks:
        assert leak.verdict == "HALT"
        assert leak.source == "guardrail:demo-summariser-canary"
        assert leak.severity == "critical"
        assert canary_token not in json.dumps(leak.args)
        assert AgentSession.objects.get(pk=leak.session_id).status == "halted"


def _aware(epoch: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def test_the_fleet_uses_only_the_client_never_django():
    probe = (
        "import sys, examples.demo_fleet, examples.demo_fleet.__main__\n"
        "apps = ('django', 'console', 'approvals', 'assessments', 'audit', 'trust')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(apps)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_procurement_story_is_the_scenarios():
    from decimal import Decimal

    from examples.demo_fleet import stories

    amounts = [Decimal(amount) for _, amount in stories.COMMITS]
    assert len(amounts) == 14 and sum(amounts) == Decimal("2300000")
    assert [Decimal(a) for a in ("95000", "120000", "180000")] == amounts[:3]
    anomalies = [n for n in range(40) if stories._invoice(n)["po"] is None]
    assert len(anomalies) == 6  # 40 reads, 6 flags, 6 routings in hours 0–12
    new_vendors = {v for v, _ in stories.COMMITS} - set(stories.READ_VENDORS)
    assert new_vendors  # some commits go to vendors never seen: the first_seen rule
