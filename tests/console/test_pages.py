"""Console pages: roles on every view, containment forms, keys shown once (SPEC §1, §8)."""

import json
import uuid

import pytest
from django.urls import resolve, reverse

from console.models import Agent, ApiKey
from tests.helpers import events_of


@pytest.fixture
def login_as(client, make_operator):
    def login(*roles):
        user = make_operator(*roles)
        client.force_login(user)
        return user

    return login


def test_pages_need_login(client, db):
    for url in ["/", "/agents/", "/settings/", "/audit/"]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize(
    "url", ["/", "/agents/", "/settings/", "/audit/", "/approvals/", "/policies/"]
)
def test_every_role_can_read(client, login_as, make_agent, url):
    make_agent("visible")
    login_as("viewer")
    response = client.get(url)
    assert response.status_code == 200


def test_agent_detail_tabs(client, login_as, make_agent):
    agent = make_agent("tabbed")
    login_as("viewer")
    for tab in ["assess", "authorize", "monitor", "verify", "adapt"]:
        assert client.get(f"/agents/{agent.id}/tab/{tab}/").status_code == 200
    assert client.get(f"/agents/{agent.id}/tab/bogus/").status_code == 404
    assert client.get("/agents/not-a-uuid/").status_code == 404


def test_the_dashboards_recent_events_name_their_agent_and_open_the_event(
    client, login_as, make_agent
):
    agent = make_agent("named-in-the-feed")
    login_as("viewer")
    [event] = events_of("agent.registered", agent_id=agent.id)
    html = client.get("/").content.decode()
    row = next(r for r in html.split("<tr>") if f"/audit/events/{event.id}/" in r)
    assert f'<a href="/agents/{agent.id}/">named-in-the-feed</a>' in row


def test_unassessed_agents_say_so(client, login_as, make_agent):
    make_agent("fresh", assessed=False)
    login_as("viewer")
    assert "Not assessed" in client.get("/agents/").content.decode()


def test_viewer_sees_no_containment_buttons_and_cannot_post(client, login_as, make_agent):
    agent = make_agent("guarded")
    login_as("viewer")
    page = client.get("/agents/").content.decode()
    assert "pause-guarded" not in page
    response = client.post(f"/agents/{agent.id}/contain/pause/", {"reason": "x"})
    assert response.status_code == 403
    assert Agent.objects.get(pk=agent.pk).status == "active"
    (denied,) = events_of("access.denied")
    assert denied.payload["permission"] == "contain"


def test_oncall_pauses_through_the_form(client, login_as, make_agent):
    agent = make_agent("pausable")
    login_as("oncall")
    form = client.get(f"/agents/{agent.id}/contain/pause/")
    assert form.status_code == 200 and "Reason" in form.content.decode()
    missing = client.post(f"/agents/{agent.id}/contain/pause/", {"reason": ""})
    assert missing.status_code == 400 and "This field is required." in missing.content.decode()
    done = client.post(
        f"/agents/{agent.id}/contain/pause/", {"reason": "looks wrong", "next": "/agents/"}
    )
    assert done.status_code == 302 and done["Location"] == "/agents/"
    assert Agent.objects.get(pk=agent.pk).status == "paused"


def test_htmx_containment_returns_a_partial_and_triggers_a_refresh(client, login_as, make_agent):
    agent = make_agent("live")
    login_as("oncall")
    response = client.post(
        f"/agents/{agent.id}/contain/pause/", {"reason": "now"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    trigger = json.loads(response["HX-Trigger"])
    assert trigger["agentChanged"]["agent_id"] == str(agent.id)


def test_revoke_requires_typing_the_agents_name(client, login_as, make_agent):
    agent = make_agent("exact-name")
    login_as("oncall")
    wrong = client.post(
        f"/agents/{agent.id}/contain/revoke/", {"reason": "bad", "confirm_name": "exact"}
    )
    assert wrong.status_code == 400 and "Type the agent" in wrong.content.decode()
    assert Agent.objects.get(pk=agent.pk).status == "active"
    client.post(
        f"/agents/{agent.id}/contain/revoke/", {"reason": "bad", "confirm_name": "exact-name"}
    )
    assert Agent.objects.get(pk=agent.pk).status == "revoked"
    again = client.get("/agents/").content.decode()
    assert "resume-exact-name" not in again and "revoke-exact-name" not in again
    resume = client.post(f"/agents/{agent.id}/contain/resume/", {"reason": "undo"})
    assert resume.status_code == 409
    assert Agent.objects.get(pk=agent.pk).status == "revoked"


def test_open_redirects_are_refused(client, login_as, make_agent):
    agent = make_agent("redir")
    login_as("oncall")
    response = client.post(
        f"/agents/{agent.id}/contain/pause/", {"reason": "x", "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == f"/agents/{agent.id}/"


def test_key_is_shown_once(client, login_as, make_agent):
    agent = make_agent("keyed")
    login_as("admin")
    shown = client.post(f"/agents/{agent.id}/keys/new/", {"label": "ci"}).content.decode()
    key = ApiKey.objects.get(agent=agent)
    assert f"wdn_live_{key.prefix}_" in shown
    later = client.get(f"/agents/{agent.id}/tab/adapt/").content.decode()
    assert f"wdn_live_{key.prefix}_…" in later
    full = shown.split('data-testid="new-key">')[1].split("<")[0]
    assert full not in later


def test_register_through_the_page(client, login_as):
    login_as("compliance")
    bad = client.post("/agents/new/", {"name": "x", "scope": "{nope"})
    assert bad.status_code == 400 and "Not valid JSON" in bad.content.decode()
    ok = client.post("/agents/new/", {"name": "fresh-one", "scope": '{"allowed_actions": ["a.*"]}'})
    agent = Agent.objects.get(name="fresh-one")
    assert ok.status_code == 302 and ok["Location"] == reverse("agent-detail", args=[agent.id])
    assert agent.scope["allowed_actions"] == ["a.*"]


def test_security_headers_and_csp_nonce(client, login_as):
    login_as("viewer")
    response = client.get("/agents/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert "<script>" not in response.content.decode()  # no inline script anywhere


def test_public_keys_are_published(client, db):
    from audit.keys import keyring

    keys = client.get("/.well-known/warden-keys.json").json()["keys"]
    assert keys and keys == [k.as_json() for k in keyring().public_keys()]
    assert set(keys[0]) == {"key_id", "algorithm", "public_key", "valid_from", "valid_until"}


def test_openapi_schema_and_docs(client, login_as):
    login_as("viewer")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    body = schema.content.decode()
    assert "/api/v1/agents" in body and "/api/v1/sessions" in body
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and "swagger" in docs.content.decode().lower()
    assert "cdn" not in docs.content.decode().lower()


def test_the_agent_runtime_resolves_its_urls_before_the_pages():
    """Every governed action resolves its URL: it must not be tried against the console's
    page patterns first (console/urls.py)."""
    session, action = uuid.uuid4(), uuid.uuid4()
    proposal = resolve(f"/api/v1/sessions/{session}/actions")
    result = resolve(f"/api/v1/sessions/{session}/actions/{action}/result")
    assert proposal.url_name == "api-session-actions" and len(proposal.tried) <= 2
    assert result.url_name == "api-action-result" and len(result.tried) <= 3
    assert resolve("/agents/").url_name == "agent-list"
