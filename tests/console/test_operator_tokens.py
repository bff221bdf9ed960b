"""Operator API tokens on the Settings page: listed by prefix, revoked one by one with a
reason, refused on the very next request (SPEC §8, §9); the log's signing keys listed as
/.well-known/warden-keys.json publishes them (SPEC §6.2)."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from audit.keys import keyring
from console import services
from console.errors import Conflict, Invalid
from console.models import OperatorToken
from tests.helpers import events_of


@pytest.fixture
def issued(make_operator, admin_user):
    operator = make_operator("compliance", username="auditor-bot")
    token, full = services.issue_operator_token(operator, by=admin_user)
    return token, full


def _agents_with(full: str) -> int:
    client = APIClient()
    return client.get("/api/v1/agents", HTTP_AUTHORIZATION=f"Token {full}").status_code


def test_a_revoked_token_is_refused_on_its_next_request(issued, admin_user):
    token, full = issued
    assert _agents_with(full) == 200

    services.revoke_operator_token(token, by=admin_user, reason="leaked in a CI log")

    assert _agents_with(full) == 401
    [event] = events_of("operator.token_revoked")
    assert event.actor == "user:root-admin"
    assert event.reason == "leaked in a CI log"
    assert event.payload == {"user": "auditor-bot", "prefix": token.prefix}


def test_revoking_needs_a_reason_and_happens_once(issued, admin_user):
    token, full = issued
    with pytest.raises(Invalid) as refused:
        services.revoke_operator_token(token, by=admin_user, reason="  ")
    assert refused.value.fields == {"reason": ["This field is required."]}
    assert _agents_with(full) == 200 and not events_of("operator.token_revoked")

    services.revoke_operator_token(token, by=admin_user, reason="rotated")
    with pytest.raises(Conflict) as again:
        services.revoke_operator_token(token, by=admin_user, reason="rotated twice")
    assert again.value.code == "token_revoked"
    assert len(events_of("operator.token_revoked")) == 1


def test_only_an_admin_may_revoke_from_the_console(client, make_operator, issued):
    token, full = issued
    client.force_login(make_operator("oncall"))
    url = f"/settings/tokens/{token.prefix}/revoke/"

    assert client.get(url).status_code == 403
    assert client.post(url, {"reason": "not mine to revoke"}).status_code == 403

    assert _agents_with(full) == 200
    assert [e.payload["path"] for e in events_of("access.denied")] == [url, url]


def test_the_console_asks_for_a_reason_then_revokes(client, admin_user, issued):
    token, full = issued
    client.force_login(admin_user)
    url = f"/settings/tokens/{token.prefix}/revoke/"

    page = client.get(url).content.decode()
    assert f"wdn_op_{token.prefix}_…" in page and 'name="reason"' in page

    missing = client.post(url, {"reason": ""})
    assert missing.status_code == 400
    assert "This field is required." in missing.content.decode()
    assert _agents_with(full) == 200

    done = client.post(url, {"reason": "the bot was retired"})
    assert done.status_code == 302 and done["Location"] == "/settings/#tokens"
    assert _agents_with(full) == 401
    assert OperatorToken.objects.get(pk=token.pk).revoked_at is not None

    settings = client.get("/settings/").content.decode()
    row = settings.split(f'data-testid="token-row-{token.prefix}"')[1].split("</tr>")[0]
    assert "revoked" in row and "revoke-token-" not in row

    assert client.get("/settings/tokens/nosuchpf/revoke/").status_code == 404


def test_settings_list_tokens_by_prefix_and_never_their_secret(client, make_operator, issued):
    token, full = issued
    client.force_login(make_operator("viewer"))
    page = client.get("/settings/").content.decode()

    assert f"wdn_op_{token.prefix}_…" in page
    assert full not in page and token.key_hash not in page
    assert f"revoke-token-{token.prefix}" not in page  # a viewer gets no button


def test_settings_list_the_signing_keys_that_the_well_known_document_publishes(
    client, make_operator, tmp_path
):
    client.force_login(make_operator("viewer"))
    with override_settings(WARDEN_KEY_DIR=tmp_path / "keys"):
        first = keyring().public_keys()[-1]
        second = keyring().rotate()
        published = client.get("/.well-known/warden-keys.json").json()["keys"]
        page = client.get("/settings/").content.decode()

    assert {key["key_id"] for key in published} == {first.key_id, second.key_id}
    for key in published:
        row = page.split(f'data-testid="signing-key-{key["key_id"]}"')[1].split("</tr>")[0]
        assert key["public_key"] in row
        assert ("signing" in row) is (key["key_id"] == second.key_id)
        assert ("retired" in row) is (key["key_id"] == first.key_id)
        assert ("the log's start" in row) is (key["key_id"] == first.key_id)


def test_settings_list_every_agents_keys_with_a_revoke_link_for_admins(
    client, make_operator, make_agent, admin_user
):
    agent = make_agent("keyed")
    live, full = services.issue_key(agent, by=admin_user, label="prod")
    gone, _ = services.issue_key(agent, by=admin_user, label="old")
    services.revoke_key(gone, by=admin_user, reason="rotated")

    client.force_login(admin_user)
    page = client.get("/settings/").content.decode()
    live_row = page.split(f'data-testid="agent-key-{live.prefix}"')[1].split("</tr>")[0]
    gone_row = page.split(f'data-testid="agent-key-{gone.prefix}"')[1].split("</tr>")[0]
    assert "keyed" in live_row and "prod" in live_row and "active" in live_row
    assert f'href="/agents/{agent.id}/keys/{live.id}/revoke/"' in live_row
    assert "revoked" in gone_row and "/revoke/" not in gone_row
    assert page.index(live.prefix) < page.index(gone.prefix)  # live keys first
    assert full not in page

    client.force_login(make_operator("viewer"))
    assert "/revoke/" not in client.get("/settings/").content.decode().split('id="agent-keys"')[1]


def test_an_admin_issues_a_token_shown_once_and_never_cached(client, admin_user, make_operator):
    make_operator("compliance", username="exporter")
    client.force_login(admin_user)

    response = client.post("/settings/operators/exporter/tokens/new/")

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    full = response.content.decode().split('data-testid="new-token">')[1].split("<")[0]
    assert full.startswith("wdn_op_")
    assert _agents_with(full) == 200
    token = OperatorToken.objects.get(user__username="exporter")
    assert full not in client.get("/settings/operators/exporter/").content.decode()
    [event] = events_of("operator.token_issued")
    assert event.actor == "user:root-admin"
    assert event.payload == {"user": "exporter", "prefix": token.prefix}
    assert client.get("/settings/operators/exporter/tokens/new/").status_code == 405


def test_no_token_for_a_deactivated_operator(client, admin_user, make_operator):
    gone = make_operator("viewer", username="gone")
    services.set_operator_active(gone, by=admin_user, active=False, reason="left")
    client.force_login(admin_user)
    response = client.post("/settings/operators/gone/tokens/new/")
    assert response.status_code == 409
    assert "A deactivated operator cannot get tokens." in response.content.decode()
    assert not OperatorToken.objects.filter(user=gone).exists()


def test_only_an_admin_issues_tokens(client, make_operator):
    make_operator("compliance", username="exporter")
    client.force_login(make_operator("compliance"))
    assert client.post("/settings/operators/exporter/tokens/new/").status_code == 403
    assert not OperatorToken.objects.exists()


def test_a_new_agent_key_page_is_never_cached(client, admin_user, make_agent):
    agent = make_agent("cached-not")
    client.force_login(admin_user)
    response = client.post(f"/agents/{agent.id}/keys/new/", {"label": "ci"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
