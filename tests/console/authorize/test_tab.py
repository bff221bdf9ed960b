"""The agent page's Authorize tab (SPEC §3, §8): scope and budgets, what applies to the
agent (its own and all-agents layers, with modes), the verdict mix of its recent actions,
and what its shadow layers would have done."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from console.authorize import services as authz
from console.roles import ROLES

from .conftest import PROCUREMENT_SCOPE, propose
from .test_pages import SPEND_LIMIT


@pytest.fixture
def buyer(governed, admin_user, make_agent, t0):
    agent, session = governed(
        name="buyer",
        tier=3,
        scope=PROCUREMENT_SCOPE,
        settings={"budgets": {"max_spend_per_day": "500000.00"}},
    )
    other = make_agent("other-bot")
    authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT, mode="enforce")
    authz.create_rule(
        by=admin_user,
        agent=agent,
        name="contract-burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=86400,
        threshold=1,
        verdict="halt",
        severity="critical",
        mode="shadow",
    )
    authz.create_rule(
        by=admin_user,
        agent=other,
        name="someone-elses",
        kind="first_seen",
        pattern="*",
        verdict="block",
    )
    start = t0 - dt.timedelta(minutes=30)
    propose(agent, session, "invoice.read", target="vendor:acme", now=start)
    propose(
        agent, session, "payment.release", target="vendor:acme", now=start + dt.timedelta(minutes=1)
    )
    for minute in (2, 3):
        propose(
            agent,
            session,
            "contract.commit",
            target="vendor:acme",
            amount=95000,
            currency="USD",
            now=start + dt.timedelta(minutes=minute),
        )
    return agent


@pytest.mark.parametrize("role", ROLES)
def test_every_role_sees_the_authorize_tab(client, make_operator, buyer, role):
    client.force_login(make_operator(role))
    response = client.get(f"/agents/{buyer.id}/tab/authorize/")
    assert response.status_code == 200
    assert b'data-testid="authorize-tab"' in response.content


def test_it_shows_scope_budgets_and_what_applies(client, admin_user, buyer):
    client.force_login(admin_user)
    text = client.get(f"/agents/{buyer.id}/tab/authorize/").content.decode()
    assert "<li>contract.commit</li>" in text and "<li>payment.*</li>" in text
    assert "500000.00" in text and "unlimited" in text
    assert "Tier 3 preset: sensitive actions need approval." in text
    assert "spend-limit" in text and "contract-burst" in text
    assert "someone-elses" not in text  # another agent's rule
    assert 'data-testid="mode-contract-burst">shadow<' in text
    assert "more than 1 × contract.commit within 24 h" in text
    # The default guardrails apply to every agent.
    assert "pii" in text and "payload-size" in text


def test_it_charts_the_verdict_mix(client, admin_user, buyer):
    client.force_login(admin_user)
    text = client.get(f"/agents/{buyer.id}/tab/authorize/").content.decode()
    mix = {
        verdict: int(
            re.search(rf'data-testid="mix-{verdict}">.*?<strong>(\d+)</strong>', text).group(1)
        )
        for verdict in ("ALLOW", "REQUIRE_APPROVAL", "BLOCK", "HALT")
    }
    # invoice.read ALLOW; payment.release BLOCK (scope); two sensitive commits need approval.
    assert mix == {"ALLOW": 1, "REQUIRE_APPROVAL": 2, "BLOCK": 1, "HALT": 0}
    assert "4 actions" in text
    assert text.count('class="fill-require-approval"') >= 1 and "<svg" in text


def test_it_lists_what_the_shadow_layers_would_have_done(client, admin_user, buyer):
    client.force_login(admin_user)
    text = client.get(f"/agents/{buyer.id}/tab/authorize/").content.decode()
    section = text[text.index('data-testid="shadow-verdicts"') :]
    assert "rule:contract-burst" in section
    assert '<span class="verdict verdict-halt">HALT</span>' in section
    assert "event=" in section or "/audit/" in section  # linked to the event


def test_a_quiet_agent_has_clear_empty_states(client, admin_user, make_agent):
    agent = make_agent("quiet")
    client.force_login(admin_user)
    text = client.get(f"/agents/{agent.id}/tab/authorize/").content.decode()
    assert "No actions in the last 14 days" in text
    assert "No shadow verdicts recorded recently" in text
    assert text.count("any") >= 2  # allowed actions and targets are unrestricted


def test_the_tab_renders_as_an_htmx_partial(client, admin_user, buyer):
    client.force_login(admin_user)
    response = client.get(f"/agents/{buyer.id}/tab/authorize/?part=tab", HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content and b'data-testid="authorize-tab"' in response.content
