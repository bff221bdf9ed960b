"""SPEC §6.3: ``verify_log`` detects tampering by someone with database access but without
the signing key, on a log of 10,000 events.

The log is built once for the module (through the real writer and integrator). Each test
drops the append-only triggers, as an attacker with database access would, tampers, and
checks that ``verify_log`` fails naming the first bad seq; the test's transaction is rolled
back afterwards, triggers included.
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import triggers
from audit.eventcodec import event_leaf_hash
from audit.keys import keyring
from audit.models import (
    Checkpoint,
    EventLogEntry,
    GovernanceEvent,
    PendingEvent,
    SessionEventCounter,
)
from audit.services import integrate_pending, record

N_EVENTS = 10_000


@pytest.fixture(scope="module")
def big_log(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        for start in range(0, N_EVENTS, 1000):
            with transaction.atomic():
                for i in range(start, start + 1000):
                    record(
                        "test.event",
                        actor=f"agent:{uuid.UUID(int=i % 7)}",
                        agent_id=uuid.UUID(int=i % 7),
                        reason="bulk",
                        payload={"i": i, "amount": f"{i}.00", "args": {"to": "vendor:acme"}},
                    )
        integrate_pending(wait=True)
        checkpoints = list(
            Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True)
        )
        assert EventLogEntry.objects.count() == N_EVENTS
        assert checkpoints == list(range(1000, N_EVENTS + 1, 1000))
        yield
        with transaction.atomic():
            triggers.drop(connection)
            for model in (
                PendingEvent,
                EventLogEntry,
                Checkpoint,
                GovernanceEvent,
                SessionEventCounter,
            ):
                model.objects.all().delete()
            triggers.install(connection)


@pytest.fixture
def attacker(big_log, db):
    """Inside the test transaction: the triggers are gone."""
    triggers.drop(connection)
    yield
    # the db fixture rolls the transaction back, bringing the triggers back too


def verify(*args) -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_log", *args)
    return str(failure.value)


def entry(seq: int) -> EventLogEntry:
    return EventLogEntry.objects.select_related("event").get(seq=seq)


def test_the_untouched_log_verifies(big_log, db, capsys):
    call_command("verify_log")
    out = capsys.readouterr().out
    assert (
        f"checked {N_EVENTS} events, {N_EVENTS} signatures, {N_EVENTS // 1000} checkpoints" in out
    )
    assert "event log verifies" in out
    assert '"tree_size": 10000' in out


def test_edited_payload_is_detected(attacker):
    target = entry(4321).event
    GovernanceEvent.objects.filter(pk=target.pk).update(
        payload_json=target.payload_json.replace('"4320.00"', '"9999999.00"')
    )
    assert "first bad seq 4321 (leaf_hash)" in verify()


def test_edited_reason_is_detected(attacker):
    GovernanceEvent.objects.filter(pk=entry(77).event_id).update(reason="nothing to see")
    assert "first bad seq 77 (leaf_hash)" in verify()


def test_deleted_row_is_detected(attacker):
    victim = entry(5000)
    EventLogEntry.objects.filter(seq=5000).delete()
    GovernanceEvent.objects.filter(pk=victim.event_id).delete()
    assert "first bad seq 5000 (sequence)" in verify()


def _forge(seq: int, prev_hash: str, *, key: Ed25519PrivateKey, key_id: str) -> None:
    event = GovernanceEvent.objects.create(
        timestamp=entry(seq - 1).event.timestamp,
        event_type="agent.resumed",
        actor="user:mallory",
        reason="forged",
        payload_json="{}",
    )
    fields = event.content_fields() | {"seq": seq, "prev_hash": prev_hash}
    leaf = event_leaf_hash(fields, event.payload_json)
    EventLogEntry.objects.create(
        seq=seq,
        event=event,
        prev_hash=prev_hash,
        leaf_hash=leaf.hex(),
        signature=base64.b64encode(key.sign(leaf)).decode(),
        key_id=key_id,
    )


def test_forged_row_appended_at_the_end_is_detected(attacker):
    real_key_id = keyring().public_keys()[-1].key_id
    _forge(
        N_EVENTS + 1,
        entry(N_EVENTS).leaf_hash,
        key=Ed25519PrivateKey.generate(),
        key_id=real_key_id,
    )
    assert f"first bad seq {N_EVENTS + 1} (signature)" in verify()


def test_forged_row_replacing_one_in_the_middle_is_detected(attacker):
    victim = entry(6000)
    EventLogEntry.objects.filter(seq=6000).delete()
    GovernanceEvent.objects.filter(pk=victim.event_id).delete()
    _forge(6000, entry(5999).leaf_hash, key=Ed25519PrivateKey.generate(), key_id="attacker0000000")
    message = verify()
    assert "first bad seq 6000 (signature)" in message


def test_swapped_rows_are_detected(attacker):
    a, b = entry(3000), entry(3001)
    EventLogEntry.objects.filter(seq__in=[3000, 3001]).delete()
    EventLogEntry.objects.create(
        seq=3000,
        event_id=b.event_id,
        prev_hash=a.prev_hash,
        leaf_hash=b.leaf_hash,
        signature=b.signature,
        key_id=b.key_id,
    )
    EventLogEntry.objects.create(
        seq=3001,
        event_id=a.event_id,
        prev_hash=b.prev_hash,
        leaf_hash=a.leaf_hash,
        signature=a.signature,
        key_id=a.key_id,
    )
    assert "first bad seq 3000" in verify()


def test_truncated_tail_covered_by_a_checkpoint_is_detected(attacker):
    tail = list(EventLogEntry.objects.filter(seq__gt=9950).values_list("event_id", flat=True))
    EventLogEntry.objects.filter(seq__gt=9950).delete()
    GovernanceEvent.objects.filter(pk__in=tail).delete()
    message = verify()
    assert "first bad seq 9951 (truncation)" in message


def test_tail_truncated_with_its_checkpoints_is_caught_against_an_external_checkpoint(
    attacker, tmp_path
):
    kept = tmp_path / "checkpoint.json"
    kept.write_text(json.dumps(Checkpoint.objects.get(tree_size=N_EVENTS).as_json()))
    tail = list(EventLogEntry.objects.filter(seq__gt=9500).values_list("event_id", flat=True))
    EventLogEntry.objects.filter(seq__gt=9500).delete()
    GovernanceEvent.objects.filter(pk__in=tail).delete()
    Checkpoint.objects.filter(tree_size__gt=9500).delete()
    call_command("verify_log")  # consistent on its own: only a kept checkpoint can tell
    assert "first bad seq 9501 (truncation)" in verify("--against", str(kept))


def test_log_rewritten_after_a_kept_checkpoint_is_caught_against_it(attacker, tmp_path):
    kept = tmp_path / "checkpoint.json"
    kept.write_text(json.dumps(Checkpoint.objects.get(tree_size=2000).as_json()))
    GovernanceEvent.objects.filter(pk=entry(1500).event_id).update(reason="rewritten")
    assert "first bad seq 1500" in verify("--against", str(kept))


def test_a_forged_external_checkpoint_is_rejected(big_log, db, tmp_path):
    forged = Checkpoint.objects.get(tree_size=N_EVENTS).as_json() | {"root_hash": "ab" * 32}
    kept = tmp_path / "checkpoint.json"
    kept.write_text(json.dumps(forged))
    assert "(checkpoint)" in verify("--against", str(kept))


def test_signature_made_with_another_key_is_rejected(attacker):
    other = Ed25519PrivateKey.generate()
    target = entry(2500)
    EventLogEntry.objects.filter(seq=2500).update(
        signature=base64.b64encode(other.sign(bytes.fromhex(target.leaf_hash))).decode()
    )
    assert "first bad seq 2500 (signature)" in verify()


def test_a_key_not_in_the_trusted_keyring_is_rejected(attacker, tmp_path):
    """Someone with database access cannot bring their own key: keys come from the key
    directory (or --keys), never from the database."""
    other = Ed25519PrivateKey.generate()
    target = entry(10)
    EventLogEntry.objects.filter(seq=10).update(
        signature=base64.b64encode(other.sign(bytes.fromhex(target.leaf_hash))).decode(),
        key_id="0123456789abcdef",
    )
    assert "first bad seq 10 (signature)" in verify()


def test_verifies_with_an_explicit_key_list(big_log, db, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [k.as_json() for k in keyring().public_keys()]}))
    call_command("verify_log", "--keys", str(keys))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"keys": []}))
    assert "first bad seq 1 (signature)" in verify("--keys", str(empty))
