"""The hot-path reads (console.authorize.history, plain SQL) agree with the ORM, and the
configuration cache follows every change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.test.utils import CaptureQueriesContext

from console.authorize import history
from console.authorize import services as authz
from console.authorize.context import Config, Context, Proposal
from console.authorize.layers.rules import name_q
from tests.console.authorize.conftest import propose

H = dt.timedelta(hours=1)


@pytest.fixture
def recorded(governed, t0):
    agent, session = governed(scope={"excluded_actions": ["payment.*"]})
    traffic = [
        ("invoice.read", "vendor:acme", "10.00"),
        ("invoice.flag", "vendor:acme", None),
        ("payment.release", "vendor:acme", "500.00"),
        ("contract.commit", "vendor:globex", "95000.00"),
        ("contract.draft", "vendor:initech", "1.50"),
        ("invoice.read", "vendor:initech", "2.25"),
    ]
    for hour, (name, target, amount) in enumerate(traffic):
        propose(
            agent,
            session,
            name,
            target=target,
            amount=Decimal(amount) if amount else None,
            now=t0 + hour * H,
        )
    return agent, session


@pytest.mark.parametrize(
    "pattern", ["invoice.read", "invoice.*", "*.re?d", "[ci]*", "contract.[!c]*", "nothing"]
)
@pytest.mark.parametrize("hours", [None, 2, 4])
def test_counts_sums_and_existence_match_the_orm(recorded, t0, pattern, hours):
    agent, session = recorded
    now = t0 + 5 * H
    ctx = Context(agent, session, Proposal(name="x"), now, Config())
    since = now - hours * H if hours else None
    orm = ctx.actions().filter(name_q(pattern))
    if since:
        orm = orm.filter(created_at__gt=since)
    assert history.count(ctx, pattern=pattern, since=since) == orm.count()
    assert history.count(ctx, pattern=pattern, since=since, limit=1) == min(1, orm.count())
    expected = orm.aggregate(s=Sum("amount"))["s"] or Decimal("0")
    assert history.total(ctx, pattern=pattern, since=since) == expected
    assert history.exists(ctx, pattern=pattern, since=since) == orm.exists()


def test_seen_targets_and_the_last_day_match_the_orm(recorded, t0):
    agent, session = recorded
    ctx = Context(agent, session, Proposal(name="x"), t0 + 5 * H, Config())
    for target in ("vendor:acme", "vendor:globex", "vendor:nobody"):
        orm = (
            ctx.actions()
            .filter(target=target)
            .filter(Q(verdict="ALLOW") | Q(result_status__isnull=False))
        )
        assert history.exists(ctx, target=target, seen=True) == orm.exists()
    assert history.last_day(ctx) == {
        "actions_last_day": 6,
        "actions_last_hour": 1,
        "spend_last_day": Decimal("95013.75"),  # the BLOCKed payment spends nothing
    }


def test_an_unchanged_configuration_is_read_with_one_small_query(governed, admin_user, t0):
    authz.create_rule(
        by=admin_user,
        name="r",
        kind="rate",
        pattern="x",
        window_seconds=60,
        threshold=99,
        verdict="block",
    )
    agent, session = governed()
    propose(agent, session, "x", now=t0)
    with CaptureQueriesContext(connection) as captured:
        propose(agent, session, "x", now=t0 + H)
    tables = " ".join(q["sql"] for q in captured.captured_queries)
    assert "console_configversion" in tables
    assert "console_rule" not in tables and "console_policy" not in tables


def test_a_change_applies_to_the_very_next_proposal(governed, admin_user, t0):
    agent, session = governed()
    assert propose(agent, session, "x", now=t0)["verdict"] == "ALLOW"
    policy = authz.create_policy(
        by=admin_user, name="no-x", module='package p\nverdict := "block"\n'
    )
    assert propose(agent, session, "x", now=t0 + H)["verdict"] == "BLOCK"
    authz.set_policy_mode(policy, by=admin_user, mode="shadow")
    assert propose(agent, session, "x", now=t0 + 2 * H)["verdict"] == "ALLOW"
