"""The backtest view (SPEC §3.2 "Backtest"): pick an agent and a date range, replay a saved
policy or rule — or the unsaved draft of the editor — and see counts per verdict with the
affected actions linked to their events. One ``*.backtested`` event per run."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest

from console.authorize import services as authz
from tests.helpers import events_of

from .conftest import propose
from .test_pages import BROKEN, SPEND_LIMIT


@pytest.fixture
def history(governed, t0):
    """A buyer with 4 contract commits (2 of them over USD 100,000) and an invoice read,
    an hour ago."""
    agent, session = governed(name="buyer", settings={"budgets": {"max_actions_per_session": 50}})
    start = t0 - dt.timedelta(hours=1)
    for minutes, (name, target, amount) in enumerate(
        [
            ("invoice.read", "vendor:acme", None),
            ("contract.commit", "vendor:acme", Decimal("50000")),
            ("contract.commit", "vendor:globex", Decimal("150000")),
            ("contract.commit", "vendor:initech", Decimal("200000")),
            ("contract.commit", "vendor:acme", Decimal("90000")),
        ]
    ):
        propose(
            agent,
            session,
            name,
            target=target,
            amount=amount,
            currency="USD" if amount else None,
            now=start + dt.timedelta(minutes=minutes),
        )
    return agent


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def range_of(t0):
    return {
        "from": (t0 - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "to": (t0 + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
    }


def count_of(text: str, verdict: str) -> int:
    row = re.search(rf'data-testid="count-{verdict}">(.*?)</tr>', text, re.S).group(1)
    return int(re.search(r"<strong>(\d+)</strong>", row).group(1))


def test_the_form_has_a_default_range_and_runs_nothing(admin_client, admin_user, history):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    page = admin_client.get(f"/policies/{policy.id}/backtest/")
    assert page.status_code == 200
    text = page.content.decode()
    assert 'name="from" value="20' in text and 'name="to" value="20' in text
    assert 'data-testid="backtest-result"' not in text
    assert not events_of("policy.backtested")


def test_a_policy_or_rule_of_one_agent_proposes_that_agent(admin_client, admin_user, history):
    def selected(path, **params):
        text = admin_client.get(path, params).content.decode()
        return re.findall(r'<option value="([^"]*)" selected>', text)

    everyone = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    assert selected(f"/policies/{everyone.id}/backtest/") == []
    mine = authz.create_policy(by=admin_user, name="buyer-limit", module=SPEND_LIMIT, agent=history)
    assert selected(f"/policies/{mine.id}/backtest/") == [str(history.id)]
    rule = authz.create_rule(
        by=admin_user,
        agent=history,
        name="burst",
        kind="rate",
        pattern="contract.*",
        window_seconds=3600,
        threshold=3,
        verdict="halt",
    )
    assert selected(f"/policies/rules/{rule.id}/backtest/") == [str(history.id)]
    # What the form sends wins, an explicit "no agent" too (then it asks for one).
    assert selected(f"/policies/{mine.id}/backtest/", backtest_agent="") == []


def test_a_policy_backtest_shows_counts_per_verdict_with_event_links(
    admin_client, admin_user, history, t0
):
    policy = authz.create_policy(
        by=admin_user, name="spend-limit", module=SPEND_LIMIT, mode="disabled"
    )
    response = admin_client.post(
        f"/policies/{policy.id}/backtest/",
        {"backtest_agent": str(history.id), "run": "1", **range_of(t0)},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Result: 5 actions replayed" in text
    assert count_of(text, "REQUIRE_APPROVAL") == 2 and count_of(text, "ALLOW") == 3
    assert count_of(text, "BLOCK") == 0 and count_of(text, "HALT") == 0
    # Each listed action links to its action.evaluated event.
    approvals = text[text.index('data-testid="actions-REQUIRE_APPROVAL"') :]
    links = re.findall(r'href="([^"]+)" data-testid="event-link"', approvals)
    recorded = {str(a.event_id) for a in history.actions.filter(amount__gt=100000)}
    assert len(links) >= 2 and all("event=" in link or "/audit/" in link for link in links)
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    assert recorded <= {m for link in links for m in re.findall(uuid, link)}
    (event,) = events_of("policy.backtested")
    assert event.payload["counts"]["REQUIRE_APPROVAL"] == 2 and event.agent_id == history.id


def test_a_draft_module_from_the_editor_is_backtested_unsaved(admin_client, history, t0):
    # The editor's "Backtest this draft" posts the form here; the page carries the module.
    first = admin_client.post(
        "/policies/backtest/", {"name": "try-it", "module": SPEND_LIMIT, "intent": "backtest"}
    )
    assert first.status_code == 200
    text = first.content.decode()
    assert 'data-testid="draft-note"' in text and '<textarea name="module" hidden>' in text
    run = admin_client.post(
        "/policies/backtest/",
        {
            "name": "try-it",
            "module": SPEND_LIMIT.replace("100000", "10000"),
            "backtest_agent": str(history.id),
            "run": "1",
            **range_of(t0),
        },
    )
    assert count_of(run.content.decode(), "REQUIRE_APPROVAL") == 4
    assert events_of("policy.backtested")[0].payload["draft"] is True
    assert admin_client.get("/policies/backtest/").status_code == 302  # nothing to replay


def test_a_draft_that_does_not_compile_names_the_line(admin_client, history, t0):
    response = admin_client.post(
        "/policies/backtest/",
        {"module": BROKEN, "backtest_agent": str(history.id), "run": "1", **range_of(t0)},
    )
    assert response.status_code == 400
    assert "line 5, column 24" in response.content.decode()
    assert not events_of("policy.backtested")


def test_a_rule_backtest_and_a_draft_of_its_values(admin_client, admin_user, history, t0):
    rule = authz.create_rule(
        by=admin_user,
        name="contract-burst",
        kind="rate",
        pattern="contract.commit",
        window_seconds=86400,
        threshold=3,
        verdict="halt",
        severity="critical",
        mode="shadow",
    )
    saved = admin_client.post(
        f"/policies/rules/{rule.id}/backtest/",
        {"backtest_agent": str(history.id), "run": "1", **range_of(t0)},
    ).content.decode()
    # The 4th commit within 24 h is the first that triggers.
    assert count_of(saved, "HALT") == 1 and count_of(saved, "ALLOW") == 4
    draft = admin_client.post(
        f"/policies/rules/{rule.id}/backtest/",
        {
            "name": "contract-burst",
            "kind": "rate",
            "pattern": "contract.commit",
            "window_value": "1",
            "window_unit": "days",
            "threshold": "1",
            "verdict": "block",
            "severity": "major",
            "priority": "50",
            "mode": "shadow",
            "backtest_agent": str(history.id),
            "run": "1",
            **range_of(t0),
        },
    ).content.decode()
    assert 'data-testid="draft-note"' in draft
    assert count_of(draft, "BLOCK") == 3
    rule.refresh_from_db()
    assert rule.threshold == 3 and rule.version == 1  # a draft changes nothing
    assert [e.payload["draft"] for e in events_of("rule.backtested")] == [False, True]


def test_an_unsaved_rule_can_be_backtested_from_its_form(admin_client, history, t0):
    response = admin_client.post(
        "/policies/rules/backtest/",
        {
            "name": "new-vendor",
            "kind": "first_seen",
            "pattern": "contract.*",
            "window_value": "",
            "window_unit": "hours",
            "threshold": "",
            "verdict": "require_approval",
            "severity": "major",
            "priority": "50",
            "mode": "shadow",
            "backtest_agent": str(history.id),
            "run": "1",
            **range_of(t0),
        },
    )
    text = response.content.decode()
    assert response.status_code == 200
    # Every commit is on a target never ALLOWed before except the last (acme, ALLOWed once).
    assert count_of(text, "REQUIRE_APPROVAL") >= 1
    assert admin_client.get("/policies/rules/backtest/").status_code == 302


def test_a_draft_rule_that_does_not_validate_cannot_run(admin_client, history, t0):
    response = admin_client.post(
        "/policies/rules/backtest/",
        {
            "name": "bad",
            "kind": "rate",
            "pattern": "contract.commit",
            "window_value": "",
            "threshold": "x",
            "verdict": "halt",
            "backtest_agent": str(history.id),
            "run": "1",
            **range_of(t0),
        },
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "window_seconds: Required for rate" in text and "threshold:" in text
    assert not events_of("rule.backtested")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"backtest_agent": ""}, "backtest_agent", "Choose the agent"),
        ({"backtest_agent": "nope"}, "backtest_agent", "No such agent."),
        ({"from": "yesterday"}, "from", "A date and time, UTC"),
        ({"to": "2024-13-45T99:00"}, "to", "A date and time, UTC"),
        ({"from": "2030-01-02T00:00", "to": "2030-01-01T00:00"}, "to", "Must be after from."),
    ],
)
def test_bad_backtest_input_is_a_field_error(
    admin_client, admin_user, history, t0, data, field, message
):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    body = {"backtest_agent": str(history.id), "run": "1", **range_of(t0), **data}
    response = admin_client.post(f"/policies/{policy.id}/backtest/", body)
    assert response.status_code == 400
    text = response.content.decode()
    assert message in text[text.index(f'id="id_{field}"') :]
    assert not events_of("policy.backtested")


def test_an_empty_range_says_so(admin_client, admin_user, history, t0):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    response = admin_client.post(
        f"/policies/{policy.id}/backtest/",
        {
            "backtest_agent": str(history.id),
            "run": "1",
            "from": "2020-01-01T00:00",
            "to": "2020-01-02T00:00",
        },
    )
    assert b"No recorded actions in this range" in response.content


def test_backtests_need_manage_policies(client, make_operator, admin_user, history, t0):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    client.force_login(make_operator("compliance"))
    assert client.get(f"/policies/{policy.id}/backtest/").status_code == 403
    response = client.post(
        f"/policies/{policy.id}/backtest/",
        {"backtest_agent": str(history.id), "run": "1", **range_of(t0)},
    )
    assert response.status_code == 403 and not events_of("policy.backtested")


def test_unsaved_edits_of_a_saved_policy_are_backtested_as_a_draft(
    admin_client, admin_user, history, t0
):
    policy = authz.create_policy(by=admin_user, name="spend-limit", module=SPEND_LIMIT)
    response = admin_client.post(
        f"/policies/{policy.id}/backtest/",
        {
            "module": SPEND_LIMIT.replace("100000", "60000"),
            "backtest_agent": str(history.id),
            "run": "1",
            **range_of(t0),
        },
    )
    text = response.content.decode()
    assert "An unsaved draft of <strong>spend-limit</strong>" in text
    assert count_of(text, "REQUIRE_APPROVAL") == 3
    policy.refresh_from_db()
    assert policy.version == 1 and "100000" in policy.module
    (event,) = events_of("policy.backtested")
    assert event.payload["draft"] is True and event.payload["id"] == str(policy.id)
