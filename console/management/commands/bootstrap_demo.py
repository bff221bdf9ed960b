"""manage.py bootstrap_demo: the demo data `make run` starts with (idempotent).

It seeds, through the same service functions the console uses (so every step is a signed
event):

* the operators: ``admin`` plus one per other role (``compliance``, ``reviewer``, ``oncall``,
  ``viewer``), passwords generated once and kept in ``var/demo-login.txt`` (0600);
* the four demo agents, owned by ``compliance`` (who registered and assessed them — so
  ``admin`` and ``reviewer`` may decide their approvals, SPEC §4 separation of duties):

  - ``procurement-agent`` — the procurement drift story (``shared/scenarios/
    procurement_drift.md``): the vectors' ``procurement_agent`` answers (risk tier 3), the
    scenario's scope and its three rules with their real windows (72 h, 24 h);
  - ``support-agent`` — replies to customers; tier 3, a PII guardrail in redact mode, and
    a Rego policy on trial (shadow mode): refunds over USD 25 would go to finance. Its
    would-be BLOCK of the demo's USD 49.90 refund is recorded on the event
    (``shadow_verdicts``) while the refund still waits for a reviewer;
  - ``observability-agent`` — watches production; tier 4, so anything but a read needs two
    approvers (a production rollback at 2 a.m. goes to the queue);
  - ``inbox-summariser`` — summarises e-mail; tier 2, a canary token guardrail: a decoy
    credential planted in its context, which must never leave in an action (HALT);

* an agent key for each, with the canary token the summariser carries, in
  ``var/demo-keys.json`` (0600), read by ``python -m examples.demo_fleet``.

Running it again changes nothing that exists: operators, agents, rules, guardrails and the
policy are looked up by name, and a key in the keys file that still authenticates is kept
(a new one is issued only for an agent whose key is missing or revoked). An agent an
operator revoked stays revoked (SPEC §1: permanent); ``make clean`` starts the demo over.
"""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from assessments.services import assess_agent
from audit.services import record
from console import credentials
from console.authorize import canary
from console.authorize.models import Guardrail, Policy, Rule
from console.authorize.services import create_guardrail, create_policy, create_rule
from console.models import Agent, ApiKey
from console.roles import ADMIN, COMPLIANCE, ONCALL, REVIEWER, ROLES, VIEWER
from console.services import issue_key, register_agent

# One operator per role; the agents' owner is ``compliance`` (never a decider of them).
OPERATORS = (
    ("admin", ADMIN),
    ("compliance", COMPLIANCE),
    ("reviewer", REVIEWER),
    ("oncall", ONCALL),
    ("viewer", VIEWER),
)
OWNER = "compliance"

# The approval TTL of the demo agents: a request nobody decides expires after 90 seconds
# (fail closed), so the agent hears "expired" instead of waiting half an hour. The fleet
# waits a little longer than that (examples/demo_fleet, --approval-timeout).
DEMO_APPROVAL_TTL = 90

# SPEC §2 answers. procurement: the `procurement_agent` vector (65.27 % → tier 3).
PROCUREMENT_ANSWERS = {
    "attack_vector": "network",
    "attack_complexity": "low",
    "privileges_required": "none",
    "user_interaction": "none",
    "scope": "unchanged",
    "model_robustness": "medium",
    "data_sensitivity": "high",
    "ethical_impact": "medium",
    "decision_criticality": "very_high",
    "adaptability": "high",
    "confidentiality_impact": "high",
    "integrity_impact": "high",
    "availability_impact": "low",
    "safety_impact": "none",
}
# Customer data (PII), replies and refunds: 52.43 % → tier 3.
SUPPORT_ANSWERS = {
    "attack_vector": "network",
    "attack_complexity": "low",
    "privileges_required": "low",
    "user_interaction": "none",
    "scope": "unchanged",
    "model_robustness": "medium",
    "data_sensitivity": "very_high",
    "ethical_impact": "medium",
    "decision_criticality": "medium",
    "adaptability": "medium",
    "confidentiality_impact": "high",
    "integrity_impact": "low",
    "availability_impact": "low",
    "safety_impact": "none",
}
# Production access, rollbacks and restarts: 94.15 % → tier 4.
OBSERVABILITY_ANSWERS = {
    "attack_vector": "network",
    "attack_complexity": "low",
    "privileges_required": "none",
    "user_interaction": "none",
    "scope": "changed",
    "model_robustness": "very_high",
    "data_sensitivity": "high",
    "ethical_impact": "high",
    "decision_criticality": "very_high",
    "adaptability": "very_high",
    "confidentiality_impact": "high",
    "integrity_impact": "critical",
    "availability_impact": "critical",
    "safety_impact": "high",
}
# Reads mail, writes summaries: 39.92 % → tier 2.
SUMMARISER_ANSWERS = {
    "attack_vector": "network",
    "attack_complexity": "low",
    "privileges_required": "low",
    "user_interaction": "required",
    "scope": "unchanged",
    "model_robustness": "high",
    "data_sensitivity": "medium",
    "ethical_impact": "low",
    "decision_criticality": "low",
    "adaptability": "medium",
    "confidentiality_impact": "medium",
    "integrity_impact": "low",
    "availability_impact": "none",
    "safety_impact": "none",
}

AGENTS: dict[str, dict[str, Any]] = {
    "procurement": {
        "name": "procurement-agent",
        "description": "Reviews invoices, flags anomalies, routes items for human review "
        "(the procurement drift story).",
        "scope": {
            "allowed_actions": [
                "invoice.read",
                "invoice.flag",
                "review.route",
                "contract.draft",
                "contract.commit",
            ],
            "excluded_actions": ["payment.*"],
            "allowed_targets": ["vendor:*"],
            "read_only_actions": ["invoice.read"],
            "sensitive_actions": ["contract.commit"],
        },
        "answers": PROCUREMENT_ANSWERS,
    },
    "support": {
        "name": "support-agent",
        "description": "Answers customer tickets; refunds need a person.",
        "scope": {
            "allowed_actions": ["ticket.read", "kb.search", "reply.send", "refund.issue"],
            "allowed_targets": ["ticket:*", "customer:*", "kb:*"],
            "read_only_actions": ["ticket.read", "kb.search"],
            "sensitive_actions": ["refund.issue"],
        },
        "answers": SUPPORT_ANSWERS,
    },
    "observability": {
        "name": "observability-agent",
        "description": "Watches production metrics and logs; may propose rollbacks.",
        "scope": {
            "allowed_actions": [
                "metrics.read",
                "logs.read",
                "alerts.read",
                "deploy.rollback",
                "service.restart",
            ],
            "allowed_targets": ["prod:*", "staging:*"],
            "read_only_actions": ["*.read"],
        },
        "answers": OBSERVABILITY_ANSWERS,
    },
    "summariser": {
        "name": "inbox-summariser",
        "description": "Summarises the shared inbox into a daily digest.",
        "scope": {
            "allowed_actions": ["email.read", "summary.write", "email.send"],
            "allowed_targets": ["mailbox:*", "digest:*", "email:*"],
            "read_only_actions": ["email.read"],
        },
        "answers": SUMMARISER_ANSWERS,
    },
}

# The scenario's rules (shared/scenarios/procurement_drift.md), with their real windows:
# the fleet plays 72 story hours in minutes, so every commit falls inside both windows and
# the counts are real (no clock is tampered with).
PROCUREMENT_RULES = (
    {
        "name": "demo-contract-value-72h",
        "description": "contract.commit amounts over USD 250,000 within 72 h need a person.",
        "kind": "cumulative",
        "pattern": "contract.commit",
        "window_seconds": 72 * 3600,
        "threshold": "250000.00",
        "verdict": "require_approval",
        "severity": "major",
        "priority": 60,
    },
    {
        "name": "demo-contract-burst-24h",
        "description": "More than 3 contract.commit within 24 h: stop the session.",
        "kind": "rate",
        "pattern": "contract.commit",
        "window_seconds": 24 * 3600,
        "threshold": 3,
        "verdict": "halt",
        "severity": "critical",
        "priority": 90,
    },
    {
        "name": "demo-new-vendor",
        "description": "A contract with a vendor this agent never dealt with needs a person.",
        "kind": "first_seen",
        "pattern": "contract.commit",
        "verdict": "require_approval",
        "severity": "minor",
        "priority": 50,
    },
)
SUPPORT_PII = {
    "name": "demo-support-pii",
    "description": "Customer e-mails, phones, cards and IBANs never leave in a reply.",
    "kind": "pii",
    "mode": "redact",
    "stage": "both",
}
# A policy being tried out before it is enforced: shadow mode records what it would have
# decided (the event's shadow_verdicts; a backtest over the agent's history shows more).
SUPPORT_REFUND_POLICY = {
    "name": "demo-refund-limit",
    "description": "Trial: refunds over USD 25 go through finance, not the agent.",
    "mode": "shadow",
    "module": """package warden.demo_refund_limit

import rego.v1

default verdict := "allow"

verdict := "block" if {
	input.action.name == "refund.issue"
	is_number(input.action.amount)
	input.action.amount > 25
}

reason := "refunds over USD 25 go through finance" if verdict == "block"
""",
}
SUMMARISER_CANARY = "demo-summariser-canary"


def _random_password() -> str:
    return secrets.token_urlsafe(9)


def _canary_token() -> str:
    # Looks like an AWS access key id: what a prompt injection would go looking for.
    return "AKIA" + "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)
    )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(0o600)


def _read_logins(path: Path) -> dict[str, str]:
    """``username password`` per line (a one-line file of the old format is admin's)."""
    if not path.exists():
        return {}
    lines = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0]) == 1:
        return {"admin": lines[0][0]}
    return {parts[0]: parts[1] for parts in lines if len(parts) >= 2}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key_still_valid(agent: Agent, key: Any) -> bool:
    if not isinstance(key, str) or not key:
        return False
    return ApiKey.objects.filter(
        agent=agent, revoked_at__isnull=True, key_hash=credentials.key_hash(key)
    ).exists()


class Command(BaseCommand):
    help = (
        "Seed the demo: operators per role, four assessed and scoped agents with their rules "
        "and guardrails, and their keys in var/demo-keys.json. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--keys-file",
            default=None,
            help="where to write the agents' keys (default var/demo-keys.json)",
        )
        parser.add_argument(
            "--logins-file",
            default=None,
            help="where the operators' passwords are kept (default var/demo-login.txt)",
        )

    def handle(self, *args, keys_file=None, logins_file=None, **options):
        keys_path = Path(keys_file) if keys_file else settings.VAR_DIR / "demo-keys.json"
        logins_path = Path(logins_file) if logins_file else settings.VAR_DIR / "demo-login.txt"

        logins = self._operators(logins_path)
        User = get_user_model()
        admin = User.objects.get(username="admin")
        owner = User.objects.get(username=OWNER)

        previous = _read_json(keys_path).get("agents") or {}
        agents: dict[str, Agent] = {}
        for role, spec in AGENTS.items():
            agents[role] = self._agent(spec, owner=owner)
        self._rules(agents["procurement"], by=admin)
        self._guardrail(SUPPORT_PII, agents["support"], by=admin)
        self._policy(SUPPORT_REFUND_POLICY, agents["support"], by=admin)
        token = self._canary(agents["summariser"], by=admin)

        entries: dict[str, Any] = {}
        for role, agent in agents.items():
            old = previous.get(role) if isinstance(previous.get(role), dict) else {}
            key = old.get("key")
            if agent.status == Agent.Status.REVOKED:
                key = None  # revoked is permanent; its fleet thread stops at once
            elif not _key_still_valid(agent, key):
                _, key = issue_key(agent, by=admin, label="demo fleet")
            entries[role] = {
                "name": agent.name,
                "agent_id": str(agent.id),
                "key": key,
            }
        document = {
            "format": "warden-demo-keys-v1",
            "agents": entries,
            "canary": token,
        }
        _write_private(keys_path, json.dumps(document, indent=2) + "\n")

        for username, _role in OPERATORS:
            self.stdout.write(f"{username} / {logins[username]}")

    # -- operators -----------------------------------------------------------------------
    def _operators(self, path: Path) -> dict[str, str]:
        User = get_user_model()
        logins = _read_logins(path)
        changed = False
        with transaction.atomic():
            for name in ROLES:
                Group.objects.get_or_create(name=name)
            for username, role in OPERATORS:
                user = User.objects.filter(username=username).first()
                if user is not None and username in logins:
                    continue
                password = _random_password()
                if user is None:
                    user = User.objects.create_user(username, password=password)
                    user.groups.add(Group.objects.get(name=role))
                    record(
                        "operator.created",
                        actor="system:bootstrap_demo",
                        reason=f"demo {role}",
                        payload={"username": username, "roles": [role]},
                    )
                else:  # the password file was lost: a new demo password
                    user.set_password(password)
                    user.save(update_fields=["password"])
                logins[username] = password
                changed = True
        if changed or not path.exists():
            _write_private(path, "".join(f"{u} {p}\n" for u, p in logins.items()))
        return logins

    # -- agents --------------------------------------------------------------------------
    def _agent(self, spec: dict[str, Any], *, owner) -> Agent:
        agent = Agent.objects.filter(name=spec["name"]).first()
        if agent is None:
            agent = register_agent(
                name=spec["name"],
                by=owner,
                description=spec["description"],
                scope=spec["scope"],
                settings={"approval_ttl_seconds": DEMO_APPROVAL_TTL},
                reason="demo fleet",
            )
        if not agent.is_assessed and agent.status != Agent.Status.REVOKED:
            assess_agent(agent, answers=spec["answers"], by=owner, reason="demo fleet")
        return Agent.objects.get(pk=agent.pk)

    def _rules(self, agent: Agent, *, by) -> None:
        for spec in PROCUREMENT_RULES:
            if not Rule.objects.filter(name=spec["name"], deleted_at__isnull=True).exists():
                create_rule(by=by, agent=agent, **spec)

    def _guardrail(self, spec: dict[str, Any], agent: Agent, *, by) -> Guardrail:
        existing = Guardrail.objects.filter(name=spec["name"], deleted_at__isnull=True).first()
        return existing or create_guardrail(by=by, agent=agent, **spec)

    def _policy(self, spec: dict[str, Any], agent: Agent, *, by) -> Policy:
        existing = Policy.objects.filter(name=spec["name"], deleted_at__isnull=True).first()
        return existing or create_policy(by=by, agent=agent, **spec)

    def _canary(self, agent: Agent, *, by) -> str:
        existing = Guardrail.objects.filter(name=SUMMARISER_CANARY, deleted_at__isnull=True).first()
        if existing is not None:
            tokens = canary.tokens_of(existing) or ()
            if tokens:
                return tokens[0]
        token = _canary_token()
        if existing is None:
            create_guardrail(
                by=by,
                agent=agent,
                name=SUMMARISER_CANARY,
                description="A decoy credential planted in the summariser's context.",
                kind="canary",
                mode="block",
                stage="both",
                config={"tokens": [token]},
            )
        else:  # tokens unreadable (SECRET_KEY changed): plant a new one
            from console.authorize.services import update_guardrail

            update_guardrail(existing, by=by, config={"tokens": [token]}, reason="demo re-seeded")
        return token
