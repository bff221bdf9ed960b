"""Canary tokens on the Settings page (SPEC §3.2 step 3, §8): created once, their values
shown on that one response and never again — not in any page, list, form, event or API
answer; listed by label and fingerprint; disabled or revoked with a confirmation."""

from __future__ import annotations

import re

import pytest

from console.authorize import canary
from console.authorize.models import Guardrail
from tests.helpers import events_of, integrate

MY_TOKEN = "sk_live_HONEYPOT_4f9a1c77e2"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def create(client, **overrides):
    data = {
        "name": "crm-honeypot",
        "description": "planted in the CRM export",
        "agent": "",
        "tokens": f"{MY_TOKEN}\n",
        "generate": "2",
        "stage": "both",
        "enforcement": "enforce",
    }
    data.update(overrides)
    return client.post("/settings/canaries/new/", data)


def test_the_tokens_are_shown_once_on_creation_and_never_cached(admin_client):
    response = create(admin_client)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    shown = re.findall(r'data-testid="canary-token">([^<]+)<', response.content.decode())
    assert len(shown) == 3 and MY_TOKEN in shown
    generated = [t for t in shown if t != MY_TOKEN]
    assert all(t.startswith("wdn-canary-") and len(t) == len("wdn-canary-") + 24 for t in generated)
    guardrail = Guardrail.objects.get(kind="canary")
    assert sorted(canary.tokens_of(guardrail)) == sorted(shown)
    assert guardrail.enforcement == "enforce" and guardrail.stage == "both"
    assert guardrail.severity == "critical"
    (event,) = events_of("guardrail.created")
    assert event.payload["config"]["token_count"] == 3


def test_no_page_shows_a_token_after_creation(admin_client, make_agent):
    agent = make_agent("buyer")
    response = create(admin_client, agent=str(agent.id))
    tokens = re.findall(r'data-testid="canary-token">([^<]+)<', response.content.decode())
    guardrail = Guardrail.objects.get(kind="canary")
    integrate()
    pages = [
        "/settings/",
        "/policies/",
        f"/policies/?agent={agent.id}",
        f"/policies/guardrails/{guardrail.id}/edit/",
        f"/policies/guardrails/{guardrail.id}/mode/?mode=shadow",
        f"/policies/guardrails/{guardrail.id}/delete/",
        f"/agents/{agent.id}/tab/authorize/",
        "/audit/",
        "/",
        "/settings/canaries/new/",
        "/api/v1/guardrails",
        f"/api/v1/guardrails/{guardrail.id}",
    ]
    for url in pages:
        page = admin_client.get(url)
        assert page.status_code == 200, url
        text = page.content.decode()
        for token in tokens:
            assert token not in text, (url, token)
    settings = admin_client.get("/settings/").content.decode()
    row = re.search(r'data-testid="canary-row-crm-honeypot">(.*?)</tr>', settings, re.S).group(1)
    for token in tokens:
        assert canary.fingerprint(token) in row
    assert "3 ×" in row and "buyer" in row
    # Neither the event log nor a later edit of the guardrail carries them.
    for event in events_of("guardrail.created"):
        for token in tokens:
            assert token not in event.payload_json
    edit = admin_client.post(
        f"/policies/guardrails/{guardrail.id}/edit/",
        {
            "name": "crm-honeypot",
            "kind": "canary",
            "mode": "block",
            "enforcement": "shadow",
            "stage": "input",
            "severity": "critical",
            "agent": "",
            "description": "",
        },
    )
    assert edit.status_code == 302
    guardrail.refresh_from_db()
    assert sorted(canary.tokens_of(guardrail)) == sorted(tokens)  # kept, unseen
    assert guardrail.enforcement == "shadow" and guardrail.agent is None


def test_a_refused_form_does_not_echo_the_tokens(admin_client):
    response = create(admin_client, name="bad name!")
    assert response.status_code == 400
    text = response.content.decode()
    assert MY_TOKEN not in text and "Up to 100 letters" in text
    assert not Guardrail.objects.filter(kind="canary").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tokens": "", "generate": "0"}, "Type at least one token or generate some."),
        ({"tokens": "short", "generate": "0"}, "tokens of 8 to 200 characters"),
        ({"generate": "99"}, "A number from 0 to 20."),
        ({"generate": "two"}, "A number from 0 to 20."),
        ({"agent": "nope"}, "No such agent."),
        ({"stage": "sideways"}, "One of input"),
    ],
)
def test_bad_canary_input_is_a_field_error(admin_client, overrides, message):
    response = create(admin_client, **overrides)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_disable_and_revoke_ask_first(admin_client):
    create(admin_client)
    guardrail = Guardrail.objects.get(kind="canary")
    settings = admin_client.get("/settings/").content.decode()
    assert 'data-testid="disable-canary-crm-honeypot"' in settings
    confirm = admin_client.get(f"/policies/guardrails/{guardrail.id}/delete/?next=/settings/")
    assert b"Delete guardrail" in confirm.content
    admin_client.post(f"/policies/guardrails/{guardrail.id}/mode/", {"mode": "disabled"})
    guardrail.refresh_from_db()
    assert guardrail.enforcement == "disabled"
    response = admin_client.post(
        f"/policies/guardrails/{guardrail.id}/delete/", {"next": "/settings/", "reason": "leaked"}
    )
    assert response["Location"] == "/settings/"
    guardrail.refresh_from_db()
    assert guardrail.deleted_at is not None
    assert (
        'data-testid="canary-row-crm-honeypot"'
        not in admin_client.get("/settings/").content.decode()
    )


def test_viewers_see_the_list_without_buttons(client, make_operator, admin_client):
    create(admin_client)
    client.force_login(make_operator("viewer"))
    settings = client.get("/settings/").content.decode()
    assert 'data-testid="canary-row-crm-honeypot"' in settings
    assert 'data-testid="new-canary"' not in settings and "revoke-canary" not in settings
    assert client.get("/settings/canaries/new/").status_code == 403


def test_an_empty_list_explains_canaries(admin_client):
    assert b"No canary tokens" in admin_client.get("/settings/").content
