"""Writes of policies, rules and guardrails (SPEC §3, §9): one event each, versions, names,
compile errors with line numbers, write-only canary tokens."""

from __future__ import annotations

from decimal import Decimal

import pytest

from console.authorize import services as authz
from console.authorize.models import Guardrail, Policy, Rule
from console.errors import Conflict, Invalid
from tests.helpers import events_of

ALLOW_ALL = 'package warden.allow_all\n\ndefault verdict := "allow"\n'
SPEND_LIMIT = """package warden.spend_limit

import rego.v1

default verdict := "allow"

verdict := "require_approval" if input.action.amount > 100000

reason := "over USD 100,000" if verdict == "require_approval"
"""
BROKEN = """package warden.broken

default verdict := "allow"
verdict := "block" if {
   input.action.amount >
}
"""


def test_creating_a_policy_records_one_event(admin_user):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    assert policy.package == "warden.spend_limit" and policy.version == 1
    (event,) = events_of("policy.created")
    assert event.actor == "user:root-admin"
    assert event.payload["id"] == str(policy.id)
    assert event.payload["name"] == "spend-limit"
    assert event.payload["mode"] == "enforce" and event.payload["version"] == 1


def test_a_policy_that_does_not_compile_cannot_be_enabled_and_names_the_line(admin_user):
    with pytest.raises(Invalid) as refused:
        authz.create_policy(by=admin_user, name="broken", module=BROKEN)
    assert refused.value.code == "policy_invalid"
    assert refused.value.fields["module"] == ["line 5, column 24: Invalid boolean operator"]
    assert refused.value.problems[0].line == 5
    assert not Policy.objects.exists() and not events_of("policy.created")


def test_a_broken_draft_can_be_saved_disabled_but_not_enabled(admin_user):
    draft = authz.create_policy(by=admin_user, name="broken", module=BROKEN, mode="disabled")
    assert draft.mode == "disabled"
    with pytest.raises(Invalid) as refused:
        authz.set_policy_mode(draft, by=admin_user, mode="shadow")
    assert "line 5" in refused.value.fields["module"][0]
    fixed = authz.update_policy(
        draft, by=admin_user, module=ALLOW_ALL.replace("allow_all", "broken")
    )
    enabled = authz.set_policy_mode(fixed, by=admin_user, mode="enforce")
    assert enabled.mode == "enforce" and enabled.version == 3
    assert [e.payload["changes"] for e in events_of("policy.changed")] == [["module"], ["mode"]]


def test_a_module_must_define_verdict(admin_user):
    problems = authz.validate_module("package warden.x\n\nfoo := 1\n")
    assert [p.message for p in problems] == ["the module must define `verdict`"]
    assert authz.validate_module(SPEND_LIMIT) == []


def test_names_are_unique_among_live_policies_and_free_again_after_delete(admin_user):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    with pytest.raises(Conflict) as taken:
        authz.create_policy(by=admin_user, name="spend-limit", module=ALLOW_ALL)
    assert taken.value.code == "name_taken"
    deleted = authz.delete_policy(policy, by=admin_user)
    assert deleted.deleted_at is not None and deleted.mode == "disabled"
    assert events_of("policy.changed")[-1].payload["deleted"] is True
    again = authz.create_policy(by=admin_user, name="spend-limit", module=ALLOW_ALL)
    assert again.pk != policy.pk
    with pytest.raises(Conflict):
        authz.update_policy(deleted, by=admin_user, module=ALLOW_ALL)


def test_an_update_that_changes_nothing_records_nothing(admin_user):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    same = authz.update_policy(policy, by=admin_user, module=SPEND_LIMIT, mode="enforce")
    assert same.version == 1 and not events_of("policy.changed")


def test_rules_are_validated_per_kind(admin_user):
    with pytest.raises(Invalid) as bad:
        authz.create_rule(
            by=admin_user, name="burst", kind="rate", pattern="contract.commit", verdict="halt"
        )
    assert set(bad.value.fields) == {"window_seconds", "threshold"}
    with pytest.raises(Invalid) as bad:
        authz.create_rule(
            by=admin_user,
            name="seq",
            kind="sequence",
            pattern="customer.read",
            window_seconds=3600,
            verdict="block",
            priority=101,
            severity="huge",
        )
    assert set(bad.value.fields) == {"then_pattern", "priority", "severity"}
    with pytest.raises(Invalid) as bad:
        authz.create_rule(
            by=admin_user, name="x y", kind="first_seen", pattern="a[[b", verdict="maybe"
        )
    assert set(bad.value.fields) == {"name", "pattern", "verdict"}


def test_a_rule_is_created_changed_and_deleted_with_events(admin_user):
    rule = authz.create_rule(
        by=admin_user,
        name="contract-burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=86400,
        threshold=3,
        verdict="halt",
        severity="critical",
        priority=90,
    )
    assert rule.threshold == Decimal("3") and rule.mode == "enforce"
    rule = authz.set_rule_mode(rule, by=admin_user, mode="shadow")
    rule = authz.update_rule(rule, by=admin_user, threshold=5)
    assert (rule.mode, rule.threshold, rule.version) == ("shadow", Decimal("5"), 3)
    authz.delete_rule(rule, by=admin_user)
    assert [e.payload["changes"] for e in events_of("rule.changed")] == [
        ["mode"],
        ["threshold"],
        ["deleted"],
    ]
    assert events_of("rule.created")[0].payload["kind"] == "rate"


def test_canary_tokens_are_stored_encrypted_and_never_shown(admin_user):
    guardrail = authz.create_guardrail(
        by=admin_user,
        name="canaries",
        kind="canary",
        mode="block",
        config={"tokens": ["wdn-canary-7f3a9c1e", "ACME-CANARY-0042"]},
    )
    stored = Guardrail.objects.get(pk=guardrail.pk)
    assert "wdn-canary-7f3a9c1e" not in stored.secret and stored.secret
    assert stored.config == {
        "token_count": 2,
        "fingerprints": [
            authz.canary.fingerprint(t) for t in ["ACME-CANARY-0042", "wdn-canary-7f3a9c1e"]
        ],
    }
    assert stored.severity == "critical"
    (event,) = events_of("guardrail.created")
    assert "wdn-canary-7f3a9c1e" not in event.payload_json
    assert set(authz.canary.tokens_of(stored)) == {"wdn-canary-7f3a9c1e", "ACME-CANARY-0042"}
    # Changing the mode keeps the tokens.
    changed = authz.update_guardrail(stored, by=admin_user, mode="log")
    assert set(authz.canary.tokens_of(changed)) == {"wdn-canary-7f3a9c1e", "ACME-CANARY-0042"}


def test_guardrail_configs_are_validated(admin_user):
    with pytest.raises(Invalid) as bad:
        authz.create_guardrail(by=admin_user, name="c", kind="canary", config={"tokens": ["short"]})
    assert "config.tokens" in bad.value.fields
    with pytest.raises(Invalid) as bad:
        authz.create_guardrail(
            by=admin_user, name="size", kind="payload_size", mode="redact", config={"max_bytes": 0}
        )
    assert set(bad.value.fields) == {"mode", "config.max_bytes"}
    with pytest.raises(Invalid) as bad:
        authz.create_guardrail(
            by=admin_user, name="pii2", kind="pii", config={"detect": ["dna"], "extra": 1}
        )
    assert set(bad.value.fields) == {"config.detect", "config.extra"}


def test_a_fresh_install_has_the_default_guardrails(db):
    defaults = {g.name: g for g in Guardrail.objects.filter(deleted_at__isnull=True)}
    assert defaults["pii"].kind == "pii" and defaults["pii"].mode == "redact"
    assert defaults["pii"].stage == "both"
    assert defaults["payload-size"].config == {"max_bytes": 65536}
    assert defaults["payload-size"].mode == "block"


def test_a_deleted_default_guardrail_is_not_recreated(admin_user):
    authz.delete_guardrail(Guardrail.objects.get(name="pii"), by=admin_user)
    assert authz.ensure_default_guardrails() == 0
    assert not Guardrail.objects.filter(name="pii", deleted_at__isnull=True).exists()


def test_testing_a_policy_gives_the_verdict_or_the_compile_problems():
    answer = authz.test_policy(module=SPEND_LIMIT, input_document={"action": {"amount": 150000}})
    assert answer["verdict"] == "REQUIRE_APPROVAL" and answer["reason"] == "over USD 100,000"
    broken = authz.test_policy(module=BROKEN, input_document={})
    assert broken["ok"] is False
    assert broken["problems"] == [{"line": 5, "column": 24, "message": "Invalid boolean operator"}]


def test_rule_queryset_order_is_priority_first(admin_user):
    for name, priority in (("low", 10), ("high", 90), ("mid", 50)):
        authz.create_rule(
            by=admin_user,
            name=name,
            kind="first_seen",
            pattern="*",
            verdict="block",
            priority=priority,
        )
    assert [r.name for r in Rule.objects.all()] == ["high", "mid", "low"]
