"""Backtests (SPEC §3.2): a policy or rule, saved or draft, over an agent's recorded actions;
read-only apart from one event."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from console.authorize import services as authz
from console.authorize.models import Action, Policy, Rule
from console.errors import Invalid
from tests.console.authorize.conftest import propose
from tests.helpers import events_of

H = dt.timedelta(hours=1)


@pytest.fixture
def history(governed, t0):
    """Six commits, one every 5 hours, all ALLOWed when recorded (no rules yet)."""
    agent, session = governed()
    for i in range(6):
        propose(
            agent,
            session,
            "contract.commit",
            target=f"vendor:v{i % 2}",
            amount=Decimal("100000"),
            now=t0 + 5 * i * H,
        )
    propose(agent, session, "invoice.read", target="vendor:v0", now=t0 + 30 * H)
    return agent


def test_a_rule_backtest_replays_each_action_against_the_history_before_it(history, admin_user, t0):
    rule = authz.create_rule(
        by=admin_user,
        name="burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=86400,
        threshold=3,
        verdict="halt",
        mode="disabled",
    )
    before = list(Action.objects.values_list("id", "verdict"))
    result = authz.backtest_rule(rule, agent=history, start=t0 - H, end=t0 + 48 * H, by=admin_user)
    # Commits 4, 5 and 6 are each the 4th or more within 24 h.
    assert result.counts == {"ALLOW": 4, "REQUIRE_APPROVAL": 0, "BLOCK": 0, "HALT": 3}
    assert [a["created_at"][:13] for a in result.actions["HALT"]] == [
        (t0 + h * H).isoformat()[:13] for h in (15, 20, 25)
    ]
    assert result.not_applicable == 1 and result.total == 7 and result.changed == 3
    assert list(Action.objects.values_list("id", "verdict")) == before
    (event,) = events_of("rule.backtested")
    assert event.payload["counts"]["HALT"] == 3 and event.payload["id"] == str(rule.id)
    assert event.agent_id == history.id and event.payload["draft"] is False


def test_a_draft_rule_can_be_backtested_without_saving(history, admin_user, t0):
    draft = Rule(
        name="draft-sum",
        kind="cumulative",
        pattern="contract.*",
        window_seconds=72 * 3600,
        threshold=Decimal("250000"),
        verdict="require_approval",
    )
    result = authz.backtest_rule(draft, agent=history, start=t0, end=t0 + 48 * H, by=admin_user)
    assert result.counts["REQUIRE_APPROVAL"] == 4 and result.subject["id"] is None
    assert not Rule.objects.exists()
    saved = authz.create_rule(
        by=admin_user,
        name="sum",
        kind="cumulative",
        pattern="contract.*",
        window_seconds=3600,
        threshold="1",
        verdict="block",
    )
    tried = authz.backtest_rule(
        saved,
        agent=history,
        start=t0,
        end=t0 + 48 * H,
        by=admin_user,
        draft={"threshold": "150000", "window_seconds": 72 * 3600},
    )
    assert tried.subject["draft"] is True and tried.counts["BLOCK"] == 5


def test_a_policy_backtest_counts_errors_by_fail_mode(history, admin_user, t0):
    policy = authz.create_policy(
        by=admin_user,
        name="vendor-zero",
        module='package p\nimport rego.v1\ndefault verdict := "allow"\nverdict := "block" if input.action.target == "vendor:v0"\n',
    )
    result = authz.backtest_policy(policy, agent=history, start=t0, end=t0 + 48 * H, by=admin_user)
    assert result.counts["BLOCK"] == 4 and result.counts["ALLOW"] == 3
    draft = authz.backtest_policy(
        policy,
        agent=history,
        start=t0,
        end=t0 + 48 * H,
        by=admin_user,
        module="package p\nverdict := nope(1)\n",
    )
    assert draft.counts["BLOCK"] == 7 and len(draft.errors) == 7 and draft.subject["draft"] is True
    unsaved = Policy(name="scratch", module='package s\nverdict := "halt"\n')
    assert (
        authz.backtest_policy(
            unsaved, agent=history, start=t0, end=t0 + 48 * H, by=admin_user
        ).counts["HALT"]
        == 7
    )
    assert len(events_of("policy.backtested")) == 3


def test_a_backtest_needs_a_real_range_and_a_module_that_compiles(history, admin_user, t0):
    policy = authz.create_policy(
        by=admin_user, name="p", module='package p\ndefault verdict := "allow"\n'
    )
    with pytest.raises(Invalid):
        authz.backtest_policy(policy, agent=history, start=t0, end=t0, by=admin_user)
    with pytest.raises(Invalid) as bad:
        authz.backtest_policy(
            policy,
            agent=history,
            start=t0,
            end=t0 + H,
            by=admin_user,
            module="package p\nverdict := {",
        )
    assert "line 2" in bad.value.fields["module"][0]
    assert not events_of("policy.backtested")


def test_sample_input_of_a_recorded_action_is_the_spec_document(history, t0):
    action = Action.objects.filter(name="contract.commit").order_by("created_at")[2]
    document = authz.sample_input(action=action)
    assert document["session"]["action_count"] == 2
    assert document["history"]["actions_last_day"] == 2 and document["action"]["amount"] == 100000
    assert set(authz.sample_input(history)) == {"agent", "session", "action", "history", "now"}
