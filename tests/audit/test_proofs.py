"""Proof certificates (SPEC §6.3): the exact shape, pending events integrated first, a
checkpoint signed on demand, tiles, and a server that refuses to hand out a broken one."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection, transaction

from audit import proofs, triggers, verify
from audit.models import Checkpoint, GovernanceEvent, MerkleTile, PendingEvent
from audit.services import record, sign_checkpoint
from console import services as console_services
from tests.audit.synthetic import Step, governed_session, procurement_steps, run_step
from tests.helpers import client_for, integrate

EVENT_FIELDS = {
    "seq",
    "id",
    "timestamp",
    "event_type",
    "agent_id",
    "session_id",
    "workflow_id",
    "run_id",
    "actor",
    "verdict",
    "result",
    "reason",
    "payload",
    "prev_hash",
}


def trusted_keys(client) -> dict:
    return verify.load_key_list(client.get("/.well-known/warden-keys.json").json())


@pytest.fixture
def session(make_agent):
    agent = make_agent("procurement", tier=3)
    return governed_session(agent, procurement_steps(), end="halted")


def test_the_api_serves_the_exact_certificate_shape(session, make_operator):
    client = client_for(make_operator("viewer"))
    response = client.get(f"/api/v1/sessions/{session.id}/proof")
    assert response.status_code == 200
    cert = response.json()
    assert set(cert) == {"format", "session_id", "agent_id", "events", "checkpoint", "keys"}
    assert cert["format"] == "warden-proof-v1"
    assert cert["session_id"] == str(session.id) and cert["agent_id"] == str(session.agent_id)
    for entry in cert["events"]:
        assert set(entry) == {"event", "leaf_hash", "signature", "key_id", "inclusion_proof"}
        assert set(entry["event"]) == EVENT_FIELDS
    assert set(cert["checkpoint"]) == {"tree_size", "root_hash", "timestamp", "key_id", "signature"}
    assert set(cert["keys"][0]) == {
        "key_id",
        "algorithm",
        "public_key",
        "valid_from",
        "valid_until",
    }
    kinds = [e["event"]["event_type"] for e in cert["events"]]
    assert kinds[0] == "session.started" and kinds[-1] == "session.halted"
    assert len(kinds) == GovernanceEvent.objects.filter(session_id=session.id).count()
    report = verify.verify(cert, trusted_keys(client), require_closed=True)
    assert report.failures == []


def test_pending_events_are_integrated_and_a_checkpoint_signed_on_demand(make_agent):
    agent = make_agent("fresh")
    session = governed_session(agent, [Step("invoice.read", "vendor:acme")])
    assert PendingEvent.objects.exists() and not Checkpoint.objects.exists()
    cert = proofs.certificate(session.id)
    assert not PendingEvent.objects.exists()
    assert Checkpoint.objects.count() == 1
    assert cert["checkpoint"]["tree_size"] == Checkpoint.objects.get().tree_size
    assert verify.verify(cert).failures == []


def test_the_first_covering_checkpoint_is_used_so_the_certificate_is_stable(session):
    first = proofs.certificate(session.id)
    with transaction.atomic():
        for i in range(5):
            record("test.later", actor="system:test", payload={"i": i})
    integrate()
    sign_checkpoint()
    again = proofs.certificate(session.id)
    assert Checkpoint.objects.count() == 2
    assert again == first


def test_an_open_session_gets_a_certificate_of_what_happened_so_far(make_agent):
    agent = make_agent("running")
    session = console_services.open_session(agent)
    run_step(session, Step("invoice.read", "vendor:acme"))
    report = verify.verify(proofs.certificate(session.id))
    assert report.failures == []
    assert any("session open" in note for note in report.notes)
    assert verify.verify(proofs.certificate(session.id), require_closed=True).failures


def test_unknown_sessions_are_404(api):
    for value in (uuid.uuid4(), "not-a-uuid"):
        response = api.get(f"/api/v1/sessions/{value}/proof")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "session_not_found"


def test_tiles_build_the_same_proofs(make_agent, monkeypatch):
    monkeypatch.setattr(proofs, "TILE_BITS", 2)  # tiles every 4 leaves: several levels
    with transaction.atomic():
        for i in range(37):
            record("test.filler", actor="system:test", payload={"i": i})
    agent = make_agent("tiled")
    session = governed_session(agent, procurement_steps()[:3])
    with transaction.atomic():
        for i in range(11):
            record("test.filler", actor="system:test", payload={"i": i})
    integrate()
    cert = proofs.certificate(session.id)
    size = cert["checkpoint"]["tree_size"]
    levels = set(MerkleTile.objects.values_list("level", flat=True))
    assert levels == {level for level in (2, 4, 6) if size >> level}
    assert MerkleTile.objects.filter(level=2).count() == size // 4
    assert verify.verify(cert).failures == []
    # Without tiles (plain 256-leaf tiles, none complete here) the proofs are the same.
    monkeypatch.setattr(proofs, "TILE_BITS", 8)
    assert proofs.certificate(session.id)["events"] == cert["events"]


def test_a_wrong_tile_is_refused_not_served(make_agent, monkeypatch):
    monkeypatch.setattr(proofs, "TILE_BITS", 2)
    with transaction.atomic():
        for i in range(40):
            record("test.filler", actor="system:test", payload={"i": i})
    session = governed_session(make_agent("victim"), [Step("invoice.read", "vendor:acme")])
    integrate()
    sign_checkpoint()
    proofs.fill_tiles(Checkpoint.objects.get().tree_size, 2)
    # Leaves 0..15: part of the left sibling of every later event.
    MerkleTile.objects.filter(level=4, index=0).update(hash="00" * 32)
    with pytest.raises(proofs.Conflict) as refused:
        proofs.certificate(session.id)
    assert refused.value.code == "log_inconsistent"


def test_a_tampered_event_is_refused_not_served(session, api):
    proofs.certificate(session.id)
    triggers.drop(connection)  # as someone with database access would
    victim = GovernanceEvent.objects.filter(session_id=session.id, verdict="BLOCK").get()
    GovernanceEvent.objects.filter(pk=victim.pk).update(reason="nothing to see")
    response = api.get(f"/api/v1/sessions/{session.id}/proof")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "log_inconsistent"
    assert f"seq {victim.log.seq}" in response.json()["error"]["message"]


def test_the_console_download_is_the_same_certificate(session, client, make_operator, api):
    client.force_login(make_operator("viewer"))
    response = client.get(f"/audit/sessions/{session.id}/proof.json")
    assert response.status_code == 200
    assert (
        response["Content-Disposition"] == f'attachment; filename="warden-proof-{session.id}.json"'
    )
    assert json.loads(response.content) == api.get(f"/api/v1/sessions/{session.id}/proof").json()
    assert client.get(f"/audit/sessions/{uuid.uuid4()}/proof.json").status_code == 404
