"""The one event writer and the integrator (SPEC §6.1, §6.2)."""

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test import override_settings

from audit.eventcodec import ZERO_HASH, event_leaf_hash
from audit.models import Checkpoint, EventLogEntry, GovernanceEvent, PendingEvent
from audit.services import integrate_pending, record, sign_checkpoint, sign_checkpoint_if_due
from tests.helpers import integrate


def test_record_refuses_to_run_outside_a_transaction(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        record("test.event", actor="system:test")
    assert not GovernanceEvent.objects.exists()


def test_payload_is_canonical_json_with_money_as_strings(db):
    with transaction.atomic():
        event = record(
            "test.event",
            actor="user:alice",
            payload={"amount": Decimal("120000.50"), "when": None, "b": 1, "a": [1.5, "x"]},
        )
    assert event.payload_json == '{"a":[1.5,"x"],"amount":"120000.50","b":1,"when":null}'
    assert event.payload["amount"] == "120000.50"


def test_events_of_a_session_are_numbered(db):
    session = uuid.uuid4()
    with transaction.atomic():
        numbers = [
            record("test.event", actor="system:test", session_id=session).payload["session_event"]
            for _ in range(4)
        ]
        other = record("test.event", actor="system:test", session_id=uuid.uuid4())
        unsessioned = record("test.event", actor="system:test")
    assert numbers == [1, 2, 3, 4]
    assert other.payload["session_event"] == 1
    assert "session_event" not in unsessioned.payload


def test_integration_chains_hashes_and_signs_in_arrival_order(db):
    with transaction.atomic():
        events = [record("test.event", actor="system:test", payload={"i": i}) for i in range(5)]
    assert PendingEvent.objects.count() == 5
    assert integrate() == 5
    assert PendingEvent.objects.count() == 0
    entries = list(EventLogEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in entries] == [e.arrival for e in events]
    previous = ZERO_HASH
    for entry in entries:
        fields = entry.event.content_fields() | {"seq": entry.seq, "prev_hash": previous}
        assert entry.prev_hash == previous
        assert entry.leaf_hash == event_leaf_hash(fields, entry.event.payload_json).hex()
        previous = entry.leaf_hash


def test_a_checkpoint_is_signed_every_1000_events(db):
    with transaction.atomic():
        for i in range(2100):
            record("test.event", actor="system:test", payload={"i": i})
    integrate()
    assert list(Checkpoint.objects.order_by("tree_size").values_list("tree_size", flat=True)) == [
        1000,
        2000,
    ]


def test_a_checkpoint_is_signed_within_60_seconds_when_there_are_new_events(db, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    with transaction.atomic():
        record("test.event", actor="system:test")
    integrate()
    assert sign_checkpoint_if_due() is None  # fresh: not due yet
    later = timezone.now() + timedelta(seconds=60)
    monkeypatch.setattr("audit.services.timezone.now", lambda: later)
    checkpoint = sign_checkpoint_if_due()
    assert checkpoint is not None and checkpoint.tree_size == 1
    assert sign_checkpoint_if_due() is None  # nothing new since


def test_manual_checkpoint_covers_the_whole_log(db):
    assert sign_checkpoint() is None
    with transaction.atomic():
        record("test.event", actor="system:test")
    first = sign_checkpoint()
    assert first.tree_size == 1
    assert sign_checkpoint().tree_size == 1  # nothing new: the same checkpoint


@pytest.mark.django_db(transaction=True)
@override_settings(WARDEN_INTEGRATOR="inline")
def test_concurrent_writers_get_a_gap_free_chain():
    """16 threads × 25 events, each committed on its own: seq is 1..400 with no gap."""
    errors = []

    def writer(n):
        try:
            for i in range(25):
                with transaction.atomic():
                    record("test.concurrent", actor=f"system:writer{n}", payload={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    integrate_pending(wait=True)  # anything a thread left to the others
    seqs = list(EventLogEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 401))
    assert GovernanceEvent.objects.count() == 400
    assert PendingEvent.objects.count() == 0
    from django.core.management import call_command

    call_command("verify_log")


def test_one_batch_across_a_key_rotation_signs_each_event_with_its_key(db, tmp_path):
    """Events recorded before and after a rotation, integrated in one pass: each is signed
    with the key valid at its timestamp (the batch is picked event by event)."""
    from django.core.management import call_command

    from audit.keys import keyring

    with override_settings(WARDEN_KEY_DIR=tmp_path / "keys", WARDEN_INTEGRATOR="process"):
        with transaction.atomic():
            before = [record("test.event", actor="system:test") for _ in range(3)]
        old = keyring().public_keys()[-1]
        new = keyring().rotate()
        with transaction.atomic():
            after = [record("test.event", actor="system:test") for _ in range(2)]
        assert PendingEvent.objects.count() == 5
        assert integrate_pending(wait=True) == 5
        keys = dict(EventLogEntry.objects.values_list("event_id", "key_id"))
        assert [keys[e.arrival] for e in before] == [old.key_id] * 3
        assert [keys[e.arrival] for e in after] == [new.key_id] * 2
        call_command("verify_log")


def test_an_integration_pass_is_a_few_statements(db, django_assert_max_num_queries):
    """A batch is read in one query and written in one statement (plus the log head, the
    lock, the checkpoint check and the queue check), however many events it holds."""
    with transaction.atomic():
        for i in range(300):
            record("test.event", actor="system:test", payload={"i": i})
    # SQLite writes the batch with executemany: two statements, as on PostgreSQL's one.
    with django_assert_max_num_queries(8):
        assert integrate_pending(wait=True) == 300
    assert list(EventLogEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(
        range(1, 301)
    )
