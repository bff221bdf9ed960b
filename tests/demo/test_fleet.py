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
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management import call_command

from approvals import services as approvals
from approvals.models import ApprovalRequest
from audit.models import GovernanceEvent
from console import services
from console.authorize.models import Action
from console.models import Agent, AgentSession

ROOT = Path(__file__).resolve().parents[2]
FLEET_SECONDS = 30


class Fleet:
    """The fleet as a subprocess, its lines collected as they are printed."""

    def __init__(self, url: str, keys: Path) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
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
                "--approval-timeout",
                "4",
                "--backoff",
                "0.5",
                "--duration",
                str(FLEET_SECONDS),
            ],
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, who: str, text: str) -> bool:
        return any(line.split()[1:2] == [who] and text in line for line in list(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.reader.join(timeout=5)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pending(agent_name: str, action_name: str):
    return (
        ApprovalRequest.objects.filter(
            agent__name=agent_name, action_name=action_name, status="pending"
        )
        .order_by("created_at")
        .first()
    )


def test_the_fleet_plays_every_story_and_obeys_the_operators(asgi_server, tmp_path):
    keys = tmp_path / "demo-keys.json"
    call_command("bootstrap_demo", keys_file=str(keys), logins_file=str(tmp_path / "logins"))
    canary_token = json.loads(keys.read_text())["canary"]
    User = get_user_model()
    reviewer = User.objects.get(username="reviewer")
    oncall = User.objects.get(username="oncall")
    started = time.monotonic()

    fleet = Fleet(asgi_server.url, keys)
    try:
        # A reviewer approves the first contract; the agent waiting on it must commit it.
        request = wait_for(
            lambda: pending("procurement-agent", "contract.commit"), 20, "a contract approval"
        )
        approvals.decide(request, by=reviewer, decision="approve", comment="budgeted")
        # On-call pauses support once it is at work (its open session runs to its end).
        wait_for(
            lambda: AgentSession.objects.filter(agent__name="support-agent").exists(),
            10,
            "a support session",
        )
        support = Agent.objects.get(name="support-agent")
        services.pause_agent(support, by=oncall, reason="demo test: pause")
        paused_at = time.time()
        # The 2 a.m. rollback waits for two approvers; on-call revokes the agent instead.
        rollback = wait_for(
            lambda: pending("observability-agent", "deploy.rollback"), 15, "a rollback approval"
        )
        services.revoke_agent(
            Agent.objects.get(name="observability-agent"), by=oncall, reason="demo test: revoke"
        )

        def story_done() -> bool:
            return (
                Action.objects.filter(
                    agent__name="procurement-agent", name="contract.commit", verdict="HALT"
                ).exists()
                and Action.objects.filter(agent__name="inbox-summariser", verdict="HALT").exists()
                and fleet.said("observability", "revoked")
                and fleet.said("support", "paused")
                and fleet.said("procurement", "approved by reviewer — budgeted")
            )

        wait_for(story_done, FLEET_SECONDS - (time.monotonic() - started), "every story")
    finally:
        fleet.stop()
    output = "\n".join(fleet.lines)
    assert "Traceback" not in output, output

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
    assert not AgentSession.objects.filter(agent=support, started_at__gt=_aware(paused_at)).exists()

    # Observability: the rollback waited for two approvers; revoked, the agent stopped.
    assert rollback.approvals_needed == 2
    assert rollback.effective_tier == 4
    assert ApprovalRequest.objects.get(pk=rollback.pk).status == "cancelled"
    assert not Action.objects.filter(
        agent__name="observability-agent", name="deploy.rollback", result_status="ok"
    ).exists()

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
