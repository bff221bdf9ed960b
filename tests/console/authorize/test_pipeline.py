"""The decision pipeline through ``evaluate_action`` (SPEC §3.2), layer by layer, with the
real ORM: budgets, guardrails, scope, policies, rules, tier presets, shadow mode, HALT."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from console.authorize import runtime
from console.authorize import services as authz
from console.authorize.layers import policies as policy_layer
from console.authorize.models import Action, Guardrail
from console.errors import Conflict, Invalid
from console.models import Agent, AgentSession
from tests.console.authorize.conftest import PROCUREMENT_SCOPE, propose
from tests.helpers import events_of

H = dt.timedelta(hours=1)


def rule(by, name, kind, **fields):
    defaults = {"verdict": "block", "severity": "major"}
    return authz.create_rule(by=by, name=name, kind=kind, **{**defaults, **fields})


def policy(by, name, body, **fields):
    module = f"package warden.{name.replace('-', '_')}\n\nimport rego.v1\n\n{body}\n"
    return authz.create_policy(by=by, name=name, module=module, **fields)


def disable_default_pii(by):
    authz.set_guardrail_enforcement(
        Guardrail.objects.get(name="pii"), by=by, enforcement="disabled"
    )


# --- the event ---------------------------------------------------------------------------
def test_an_allowed_action_is_one_event_with_the_documented_payload(governed, trust_calls):
    agent, session = governed()
    answer = propose(
        agent,
        session,
        "invoice.read",
        target="vendor:acme",
        args={"id": "INV-1"},
        amount=Decimal("12.50"),
        currency="USD",
    )
    assert answer["verdict"] == "ALLOW" and answer["source"] == "pipeline"
    assert answer["constrained"] is False and answer["args"] == {"id": "INV-1"}
    assert answer["approval_id"] is None and answer["approval_expires_at"] is None
    (event,) = events_of("action.evaluated")
    assert str(event.id) == answer["event_id"] and event.result == "success"
    assert event.verdict == "ALLOW" and event.session_id == session.id
    payload = event.payload
    assert set(payload) == {
        "action_id",
        "source",
        "action",
        "constrained",
        "in_scope",
        "layers",
        "shadow_verdicts",
        "violation",
        "approval_id",
        "effective_tier",
        "session_event",
    }
    assert payload["action"] == {
        "name": "invoice.read",
        "target": "vendor:acme",
        "args": {"id": "INV-1"},
        "args_sha256": runtime.args_sha256({"id": "INV-1"}),
        "amount": "12.50",
        "currency": "USD",
        "sensitive": False,
        "parent_action_id": None,
    }
    assert payload["in_scope"] is True and payload["violation"] is None
    assert payload["effective_tier"] == 2
    assert [layer["layer"] for layer in payload["layers"]][:1] == ["budgets"]
    assert all(
        set(layer) == {"layer", "source", "verdict", "reason", "mode", "severity"}
        for layer in payload["layers"]
    )
    action = Action.objects.get(pk=answer["action_id"])
    assert (action.verdict, action.event_id, action.amount) == ("ALLOW", event.id, Decimal("12.50"))
    session.refresh_from_db()
    assert session.action_count == 1 and session.spend_total == Decimal("12.50")
    assert trust_calls == [event]


# --- budgets -------------------------------------------------------------------------------
def test_the_action_over_the_session_count_halts_and_ends_the_session(governed):
    agent, session = governed(settings={"budgets": {"max_actions_per_session": 2}})
    assert propose(agent, session)["verdict"] == "ALLOW"
    assert propose(agent, session)["verdict"] == "ALLOW"
    halted = propose(agent, session)
    assert (halted["verdict"], halted["source"]) == ("HALT", "budget:actions_per_session")
    session.refresh_from_db()
    assert session.status == "halted"
    (closed,) = events_of("session.halted")
    assert "budget:actions_per_session" in closed.reason
    assert events_of("action.evaluated")[-1].payload["violation"] == {"severity": "critical"}


def test_spend_budgets_count_only_what_may_run(governed, admin_user):
    agent, session = governed(
        scope={"excluded_actions": ["payment.*"]},
        settings={"budgets": {"max_spend_per_session": "1000"}},
    )
    assert propose(agent, session, "payment.release", amount=Decimal("900"))["verdict"] == "BLOCK"
    assert propose(agent, session, "invoice.pay", amount=Decimal("600"))["verdict"] == "ALLOW"
    over = propose(agent, session, "invoice.pay", amount=Decimal("500"))
    assert (over["verdict"], over["source"]) == ("HALT", "budget:session_spend")


def test_the_daily_spend_is_across_sessions_and_rolls_over(governed, t0):
    from console import services

    agent, first = governed(settings={"budgets": {"max_spend_per_day": "1000"}})
    assert propose(agent, first, "pay", amount=Decimal("600"), now=t0)["verdict"] == "ALLOW"
    second = services.open_session(agent)
    over = propose(agent, second, "pay", amount=Decimal("500"), now=t0 + 2 * H)
    assert (over["verdict"], over["source"]) == ("HALT", "budget:daily_spend")
    third = services.open_session(agent)
    assert (
        propose(agent, third, "pay", amount=Decimal("500"), now=t0 + 25 * H)["verdict"] == "ALLOW"
    )


def test_a_session_open_too_long_halts(governed):
    agent, session = governed(settings={"budgets": {"max_session_seconds": 60}})
    late = session.started_at + dt.timedelta(seconds=61)
    answer = propose(agent, session, now=late)
    assert (answer["verdict"], answer["source"]) == ("HALT", "budget:session_seconds")


def test_nesting_deeper_than_the_budget_halts(governed):
    agent, session = governed(settings={"budgets": {"max_depth": 2}})
    top = propose(agent, session, "plan")
    child = propose(agent, session, "step", parent_action_id=top["action_id"])
    assert child["verdict"] == "ALLOW"
    grandchild = propose(agent, session, "substep", parent_action_id=child["action_id"])
    assert (grandchild["verdict"], grandchild["source"]) == ("HALT", "budget:depth")
    assert Action.objects.get(pk=grandchild["action_id"]).depth == 3


def test_a_parent_from_another_session_is_refused(governed):
    from console import services

    agent, session = governed()
    other = services.open_session(agent)
    top = propose(agent, other, "plan")
    with pytest.raises(Invalid) as refused:
        propose(agent, session, "step", parent_action_id=top["action_id"])
    assert "parent_action_id" in refused.value.fields


# --- guardrails ---------------------------------------------------------------------------
def test_pii_is_redacted_by_default_and_the_answer_is_constrained(governed):
    agent, session = governed()
    answer = propose(
        agent,
        session,
        "email.send",
        args={"to": "bob@example.com", "body": "card 4111 1111 1111 1111"},
    )
    assert answer["verdict"] == "ALLOW" and answer["constrained"] is True
    assert answer["args"] == {"to": "[REDACTED:email]", "body": "card [REDACTED:card]"}
    assert answer["source"] == "guardrail:pii"
    event = events_of("action.evaluated")[0]
    assert "bob@example.com" not in event.payload_json
    assert event.payload["action"]["args_sha256"] == runtime.args_sha256(
        {"to": "bob@example.com", "body": "card 4111 1111 1111 1111"}
    )
    (hit,) = events_of("guardrail.hit")
    assert hit.payload["findings"] == ["card", "email"] and hit.payload["stage"] == "input"
    assert Action.objects.get(pk=answer["action_id"]).args == answer["args"]


def test_guardrail_modes_block_and_log(governed, admin_user):
    disable_default_pii(admin_user)
    authz.create_guardrail(
        by=admin_user, name="pii-block", kind="pii", mode="block", config={"detect": ["ssn"]}
    )
    authz.create_guardrail(
        by=admin_user, name="words", kind="banned_words", mode="log", config={"words": ["bribe"]}
    )
    agent, session = governed()
    blocked = propose(agent, session, "note", args={"text": "ssn 123-45-6789"})
    assert (blocked["verdict"], blocked["source"]) == ("BLOCK", "guardrail:pii-block")
    assert blocked["args"] == {"text": "ssn 123-45-6789"} and blocked["constrained"] is False
    logged = propose(agent, session, "note", args={"text": "a small bribe"})
    assert logged["verdict"] == "ALLOW" and logged["constrained"] is False
    assert [h.payload["guardrail"] for h in events_of("guardrail.hit")] == ["pii-block", "words"]


def test_shadow_guardrails_report_and_change_nothing(governed, admin_user):
    disable_default_pii(admin_user)
    authz.create_guardrail(
        by=admin_user, name="pii-try", kind="pii", mode="redact", enforcement="shadow"
    )
    agent, session = governed()
    answer = propose(agent, session, "email.send", args={"to": "bob@example.com"})
    assert answer["args"] == {"to": "bob@example.com"} and answer["constrained"] is False
    shadow = events_of("action.evaluated")[0].payload["shadow_verdicts"]
    assert shadow == [
        {"source": "guardrail:pii-try", "verdict": "ALLOW", "reason": "redacted email"}
    ]
    assert events_of("guardrail.hit")[0].payload["shadow"] is True


def test_a_payload_over_the_size_limit_is_blocked(governed):
    agent, session = governed()
    answer = propose(agent, session, "upload", args={"blob": "x" * 70_000})
    assert (answer["verdict"], answer["source"]) == ("BLOCK", "guardrail:payload-size")


def test_an_enforced_canary_always_halts_even_in_log_mode(governed, admin_user):
    authz.create_guardrail(
        by=admin_user,
        name="canary",
        kind="canary",
        mode="log",
        config={"tokens": ["CANARY-7f3a9c1e"]},
    )
    agent, session = governed(settings={"pause_on_halt": True})
    answer = propose(agent, session, "email.send", args={"body": ["see CANARY-7f3a9c1e-x"]})
    assert (answer["verdict"], answer["source"]) == ("HALT", "guardrail:canary")
    event = events_of("action.evaluated")[0]
    assert event.payload["violation"] == {"severity": "critical"}
    assert "CANARY-7f3a9c1e" not in event.reason
    agent.refresh_from_db()
    assert agent.status == "paused"


def test_a_canary_in_the_target_halts_and_a_shadow_canary_only_reports(governed, admin_user):
    authz.create_guardrail(
        by=admin_user, name="canary", kind="canary", config={"tokens": ["CANARY-7f3a9c1e"]}
    )
    authz.create_guardrail(
        by=admin_user,
        name="canary-new",
        kind="canary",
        enforcement="shadow",
        config={"tokens": ["NEWCANARY-0042"]},
    )
    agent, session = governed()
    quiet = propose(agent, session, "fetch", target="https://x.test/NEWCANARY-0042")
    assert quiet["verdict"] == "ALLOW"
    assert events_of("action.evaluated")[0].payload["shadow_verdicts"][0]["verdict"] == "HALT"
    loud = propose(agent, session, "fetch", target="https://x.test/CANARY-7f3a9c1e")
    assert loud["verdict"] == "HALT"


# --- scope ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [
        ("payment.release", "vendor:acme", "payment.release is excluded by the agent's scope"),
        ("email.send", "vendor:acme", "email.send is not among the agent's allowed actions"),
        ("invoice.read", "bank:hsbc", "target bank:hsbc is not among the agent's allowed targets"),
        ("invoice.read", None, "invoice.read has no target; the agent's scope restricts targets"),
    ],
)
def test_out_of_scope_is_a_major_block(governed, name, target, reason):
    agent, session = governed(
        scope={
            **PROCUREMENT_SCOPE,
            "allowed_actions": [*PROCUREMENT_SCOPE["allowed_actions"], "payment.*"],
        }
    )
    answer = propose(agent, session, name, target=target)
    assert (answer["verdict"], answer["source"], answer["reason"]) == ("BLOCK", "scope", reason)
    payload = events_of("action.evaluated")[0].payload
    assert payload["in_scope"] is False and payload["violation"] == {"severity": "major"}
    assert Action.objects.get(pk=answer["action_id"]).in_scope is False


# --- policies ------------------------------------------------------------------------------
def test_policies_decide_with_their_reason(governed, admin_user):
    policy(
        admin_user,
        "spend-limit",
        'default verdict := "allow"\nverdict := "require_approval" if input.action.amount > 100000\n'
        'reason := "over 100k" if verdict == "require_approval"',
    )
    agent, session = governed()
    assert propose(agent, session, amount=Decimal("5"))["verdict"] == "ALLOW"
    big = propose(agent, session, amount=Decimal("150000"))
    assert (big["verdict"], big["source"], big["reason"]) == (
        "REQUIRE_APPROVAL",
        "policy:spend-limit",
        "over 100k",
    )
    assert Action.objects.get(pk=big["action_id"]).verdict == "REQUIRE_APPROVAL"
    assert events_of("action.evaluated")[-1].result == "pending"


def test_a_policy_error_blocks_unless_the_agent_fails_open(governed, admin_user, make_agent):
    from console import services

    policy(admin_user, "broken-at-runtime", "verdict := nope(1)")
    agent, session = governed()
    closed = propose(agent, session)
    assert (closed["verdict"], closed["source"]) == ("BLOCK", "policy:broken-at-runtime")
    assert closed["reason"].startswith("evaluation error:")
    opener = make_agent("opener", settings={"fail_mode": "open"})
    answer = propose(opener, services.open_session(opener))
    assert answer["verdict"] == "ALLOW"
    layer = [
        entry
        for entry in events_of("action.evaluated")[-1].payload["layers"]
        if entry["layer"] == "policies"
    ]
    assert layer[0]["reason"].startswith("fail-open: evaluation error")


def test_an_unknown_verdict_is_an_evaluation_error(governed, admin_user):
    policy(admin_user, "maybe", 'verdict := "maybe"')
    agent, session = governed()
    answer = propose(agent, session)
    assert answer["verdict"] == "BLOCK" and "unknown verdict 'maybe'" in answer["reason"]


def test_an_agent_policy_applies_to_that_agent_only(governed, admin_user, make_agent):
    from console import services

    agent, session = governed()
    policy(admin_user, "no-reads", 'verdict := "block"', agent=agent)
    assert propose(agent, session)["verdict"] == "BLOCK"
    other = make_agent("other")
    assert propose(other, services.open_session(other))["verdict"] == "ALLOW"


def test_the_policy_input_document_is_spec_3_3(governed, admin_user, monkeypatch, t0):
    policy(admin_user, "observer", 'default verdict := "allow"')
    seen = []
    real = policy_layer.evaluate_policy
    monkeypatch.setattr(
        policy_layer, "evaluate_policy", lambda p, doc, **kw: seen.append(doc) or real(p, doc, **kw)
    )
    agent, session = governed(tier=3)
    propose(agent, session, "invoice.read", amount=Decimal("100"), now=t0)
    propose(
        agent,
        session,
        "invoice.read",
        target="vendor:acme",
        args={"a": 1},
        amount=Decimal("20.5"),
        currency="EUR",
        now=t0 + H / 2,
    )
    document = seen[-1]
    assert set(document) == {"agent", "session", "action", "history", "now"}
    assert set(document["agent"]) == {
        "id",
        "name",
        "status",
        "risk_tier",
        "trust_tier",
        "effective_tier",
        "trust_score",
        "scope",
    }
    assert set(document["session"]) == {
        "id",
        "workflow_id",
        "action_count",
        "spend_total",
        "started_at",
    }
    assert document["action"] == {
        "name": "invoice.read",
        "target": "vendor:acme",
        "args": {"a": 1},
        "amount": 20.5,
        "currency": "EUR",
        "sensitive": False,
        "parent_action_id": None,
    }
    assert document["session"]["action_count"] == 1 and document["session"]["spend_total"] == 100
    assert document["history"] == {
        "actions_last_hour": 1,
        "actions_last_day": 1,
        "spend_last_day": 100,
    }
    assert document["agent"]["effective_tier"] == 3 and document["now"].endswith("Z")


def test_a_shadow_policy_only_reports(governed, admin_user):
    policy(admin_user, "strict", 'verdict := "halt"', mode="shadow")
    agent, session = governed()
    assert propose(agent, session)["verdict"] == "ALLOW"
    assert (
        events_of("action.evaluated")[0].payload["shadow_verdicts"][0]["source"] == "policy:strict"
    )


# --- rules -----------------------------------------------------------------------------------
def test_a_rate_rule_triggers_on_the_action_after_the_threshold_across_sessions(
    governed, admin_user, t0
):
    from console import services

    rule(
        admin_user,
        "contract-burst",
        "rate",
        pattern="contract.commit",
        window_seconds=86400,
        threshold=3,
        verdict="halt",
        severity="critical",
    )
    agent, session = governed()
    verdicts = [
        propose(agent, session, "contract.commit", now=t0 + i * H)["verdict"] for i in range(2)
    ]
    second = services.open_session(agent)
    verdicts.append(propose(agent, second, "contract.commit", now=t0 + 2 * H)["verdict"])
    fourth = propose(agent, second, "contract.commit", now=t0 + 3 * H)
    assert verdicts == ["ALLOW"] * 3
    assert (fourth["verdict"], fourth["source"]) == ("HALT", "rule:contract-burst")
    assert fourth["reason"] == "4 contract.commit within 24 h (more than 3 triggers)"
    assert events_of("action.evaluated")[-1].payload["violation"] == {"severity": "critical"}
    third = services.open_session(agent)
    # A day after the first ones only the HALTed attempt is still inside the window.
    assert propose(agent, third, "contract.commit", now=t0 + 26 * H)["verdict"] == "ALLOW"


def test_refused_actions_still_count(governed, admin_user, t0):
    rule(admin_user, "reads", "rate", pattern="invoice.*", window_seconds=3600, threshold=2)
    agent, session = governed(scope={"allowed_actions": ["invoice.read"]})
    assert propose(agent, session, "invoice.delete", now=t0)["source"] == "scope"
    assert (
        propose(agent, session, "invoice.read", now=t0 + dt.timedelta(minutes=1))["verdict"]
        == "ALLOW"
    )
    third = propose(agent, session, "invoice.read", now=t0 + dt.timedelta(minutes=2))
    assert (third["verdict"], third["source"]) == ("BLOCK", "rule:reads")


def test_a_cumulative_rule_sums_amounts_including_the_proposed_one(governed, admin_user, t0):
    rule(
        admin_user,
        "contract-total",
        "cumulative",
        pattern="contract.commit",
        window_seconds=72 * 3600,
        threshold="250000",
        verdict="require_approval",
    )
    agent, session = governed()
    amounts = ["95000", "120000", "180000"]
    answers = [
        propose(agent, session, "contract.commit", amount=Decimal(a), now=t0 + i * 10 * H)
        for i, a in enumerate(amounts)
    ]
    assert [a["verdict"] for a in answers] == ["ALLOW", "ALLOW", "REQUIRE_APPROVAL"]
    assert (
        answers[2]["reason"]
        == "contract.commit amounts 395000.00 within 72 h (over 250000.00 triggers)"
    )


def test_a_sequence_rule_sees_a_then_b_within_the_window(governed, admin_user, t0):
    rule(
        admin_user,
        "exfiltration",
        "sequence",
        pattern="customer.read",
        then_pattern="email.send",
        window_seconds=3600,
    )
    agent, session = governed()
    assert propose(agent, session, "email.send", now=t0)["verdict"] == "ALLOW"
    propose(agent, session, "customer.read", now=t0 + H)
    assert propose(agent, session, "email.send", now=t0 + H * 1.5)["source"] == "rule:exfiltration"
    assert propose(agent, session, "email.send", now=t0 + H * 3)["verdict"] == "ALLOW"


def test_first_seen_asks_for_a_new_target_until_an_action_on_it_ran(governed, admin_user, t0):
    rule(
        admin_user,
        "new-vendor",
        "first_seen",
        pattern="contract.commit",
        verdict="require_approval",
    )
    agent, session = governed()
    assert (
        propose(agent, session, "contract.commit", target="vendor:initech", now=t0)["verdict"]
        == "REQUIRE_APPROVAL"
    )
    # Asking again does not make it known: nothing ran.
    assert (
        propose(agent, session, "contract.commit", target="vendor:initech", now=t0 + H)["verdict"]
        == "REQUIRE_APPROVAL"
    )
    propose(agent, session, "invoice.read", target="vendor:acme", now=t0 + 2 * H)
    assert (
        propose(agent, session, "contract.commit", target="vendor:acme", now=t0 + 3 * H)["verdict"]
        == "ALLOW"
    )


def test_glob_patterns_and_shadow_rules(governed, admin_user, t0):
    rule(
        admin_user,
        "any-contract",
        "rate",
        pattern="contract.*",
        window_seconds=3600,
        threshold=1,
        mode="shadow",
    )
    agent, session = governed()
    propose(agent, session, "contract.draft", now=t0)
    answer = propose(agent, session, "contract.commit", now=t0 + dt.timedelta(minutes=1))
    assert answer["verdict"] == "ALLOW"
    assert events_of("action.evaluated")[-1].payload["shadow_verdicts"] == [
        {
            "source": "rule:any-contract",
            "verdict": "BLOCK",
            "reason": "2 contract.* within 1 h (more than 1 triggers)",
        }
    ]


def test_rules_by_priority_name_the_source_of_a_tie(governed, admin_user, t0):
    rule(admin_user, "low", "rate", pattern="x", window_seconds=60, threshold=0, priority=10)
    rule(admin_user, "high", "rate", pattern="x", window_seconds=60, threshold=0, priority=90)
    agent, session = governed()
    assert propose(agent, session, "x", now=t0)["source"] == "rule:high"


def test_every_rule_and_the_policy_input_read_the_history_in_one_query(governed, admin_user, t0):
    agent, session = governed()
    propose(agent, session, "warm-up", now=t0)

    def queries(name):
        with CaptureQueriesContext(connection) as captured:
            propose(agent, session, name, target="vendor:acme", amount=Decimal("1"), now=t0 + H)
        return len(captured)

    base = queries("contract.commit")
    rule(admin_user, "r1", "rate", pattern="contract.commit", window_seconds=60, threshold=9)
    rule(admin_user, "r2", "cumulative", pattern="contract.*", window_seconds=60, threshold="9999")
    rule(
        admin_user,
        "r3",
        "sequence",
        pattern="invoice.read",
        then_pattern="contract.commit",
        window_seconds=60,
    )
    rule(admin_user, "r4", "first_seen", pattern="contract.commit", verdict="require_approval")
    queries("contract.commit")  # the first one after a change reloads the configuration
    assert queries("contract.commit") == base + 1
    authz.create_policy(by=admin_user, name="p", module='package p\nverdict := "allow"\n')
    queries("contract.commit")
    assert queries("contract.commit") == base + 1  # the policy input's history joins it


# --- tier presets -------------------------------------------------------------------------------
def test_tier_3_asks_approval_for_sensitive_actions(governed):
    agent, session = governed(tier=3, scope={"sensitive_actions": ["contract.commit"]})
    assert propose(agent, session, "invoice.read")["verdict"] == "ALLOW"
    flagged = propose(agent, session, "invoice.pay", sensitive=True)
    assert (flagged["verdict"], flagged["source"]) == ("REQUIRE_APPROVAL", "tier")
    assert propose(agent, session, "contract.commit")["verdict"] == "REQUIRE_APPROVAL"


def test_tier_4_asks_approval_for_everything_not_read_only(governed):
    agent, session = governed(tier=4, scope={"read_only_actions": ["*.read"]})
    assert propose(agent, session, "invoice.read")["verdict"] == "ALLOW"
    assert propose(agent, session, "invoice.flag")["verdict"] == "REQUIRE_APPROVAL"


def test_the_effective_tier_is_read_at_request_time(governed):
    agent, session = governed(tier=2)
    assert propose(agent, session, "x", sensitive=True)["verdict"] == "ALLOW"
    Agent.objects.filter(pk=agent.pk).update(effective_tier=3)
    agent = Agent.objects.get(pk=agent.pk)  # the next request authenticates it afresh
    assert propose(agent, session, "x", sensitive=True)["verdict"] == "REQUIRE_APPROVAL"
    assert events_of("action.evaluated")[-1].payload["effective_tier"] == 3


# --- approvals contract -------------------------------------------------------------------------
def test_require_approval_opens_a_request_with_the_redacted_args(governed, monkeypatch):
    import approvals.services

    calls = []
    expires = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    def open_request(**kwargs):
        calls.append(kwargs)
        return SimpleNamespace(id="0b9c8f5e-0000-4000-8000-000000000001", expires_at=expires)

    monkeypatch.setattr(approvals.services, "open_request", open_request)
    agent, session = governed(tier=3)
    answer = propose(
        agent,
        session,
        "pay",
        sensitive=True,
        args={"to": "bob@example.com"},
        amount=Decimal("10"),
        currency="USD",
    )
    assert answer["approval_id"] == "0b9c8f5e-0000-4000-8000-000000000001"
    assert answer["approval_expires_at"] == "2030-01-01T00:00:00.000000Z"
    (call,) = calls
    assert call["args"] == {"to": "[REDACTED:email]"} and call["source"] == "tier"
    assert call["action_id"] and str(call["action_id"]) == answer["action_id"]
    assert call["effective_tier"] == 3 and call["amount"] == Decimal("10")
    assert events_of("action.evaluated")[0].payload["approval_id"] == answer["approval_id"]


# --- HALT and closed sessions ----------------------------------------------------------------------
def test_after_a_halt_every_action_on_the_session_gets_halt(governed, admin_user, trust_calls):
    policy(
        admin_user,
        "stop",
        'default verdict := "allow"\nverdict := "halt" if input.action.name == "rm.rf"',
    )
    agent, session = governed()
    assert propose(agent, session, "rm.rf")["verdict"] == "HALT"
    later = propose(agent, session, "invoice.read", args={"to": "bob@example.com"})
    assert (later["verdict"], later["source"], later["reason"]) == (
        "HALT",
        "session",
        "the session is halted",
    )
    assert later["args"] == {"to": "[REDACTED:email]"}
    assert Action.objects.filter(session=session).count() == 2
    assert [e.event_type for e in trust_calls] == [
        "action.evaluated",
        "session.halted",
        "action.evaluated",
    ]
    agent.refresh_from_db()
    assert agent.status == "active"  # tier 2: pause_on_halt is off by default


def test_a_halt_pauses_a_tier_4_agent(governed, admin_user):
    policy(admin_user, "stop", 'verdict := "halt"')
    agent, session = governed(tier=4)
    propose(agent, session)
    agent.refresh_from_db()
    assert agent.status == "paused"
    assert events_of("agent.paused")[0].payload["session_id"] == str(session.id)


def test_an_ended_session_refuses_proposals(governed):
    from console import services

    agent, session = governed()
    services.end_session(session)
    with pytest.raises(Conflict) as refused:
        propose(agent, session)
    assert refused.value.code == "session_ended"
    assert not Action.objects.exists()


def test_a_paused_agent_keeps_working_in_open_sessions(governed, admin_user):
    from console import services

    agent, session = governed()
    services.pause_agent(agent, by=admin_user, reason="investigating")
    assert propose(agent, session)["verdict"] == "ALLOW"


def test_precedence_across_layers_halt_beats_block_beats_approval(governed, admin_user, t0):
    rule(admin_user, "burst", "rate", pattern="*", window_seconds=3600, threshold=0, verdict="halt")
    agent, session = governed(tier=3, scope={"excluded_actions": ["payment.*"]})
    answer = propose(agent, session, "payment.release", sensitive=True, now=t0)
    assert (answer["verdict"], answer["source"]) == ("HALT", "rule:burst")
    verdicts = {
        entry["source"]: entry["verdict"]
        for entry in events_of("action.evaluated")[0].payload["layers"]
    }
    assert verdicts["scope"] == "BLOCK" and verdicts["tier"] == "REQUIRE_APPROVAL"
    assert AgentSession.objects.get(pk=session.pk).status == "halted"


def test_the_event_the_action_its_session_counters_and_its_answer_are_one_write(governed, t0):
    agent, session = governed()
    with CaptureQueriesContext(connection) as captured:
        propose(agent, session, "x", amount=Decimal("5"), idempotency_key="k-1", now=t0)
    writes = [
        q["sql"]
        for q in captured.captured_queries
        if "INSERT INTO console_action " in q["sql"]
        or "UPDATE console_agentsession SET action_count" in q["sql"]
        or "INSERT INTO console_idempotencyrecord" in q["sql"]
    ]
    # PostgreSQL (client-side binding) takes the three in one round trip, the event's.
    assert len(writes) == (1 if connection.vendor == "postgresql" else 3)
    if connection.vendor == "postgresql":
        assert "INSERT INTO audit_governanceevent" in writes[0]
    session.refresh_from_db()
    assert (session.action_count, session.spend_total) == (1, Decimal("5"))


def test_inside_a_callers_transaction_the_commit_and_its_flush_stay_the_callers(governed, t0):
    # rows.durable_before_return defers the flush of the outermost transaction only (and
    # never on SQLite): here the test's transaction is the outermost.
    agent, session = governed()
    with CaptureQueriesContext(connection) as captured:
        propose(agent, session, "x", now=t0)
    statements = " ".join(q["sql"] for q in captured.captured_queries)
    assert "synchronous_commit" not in statements
    assert "pg_logical_emit_message" not in statements
