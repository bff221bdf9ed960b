"""SPEC §6.2: UPDATE, DELETE (and TRUNCATE on PostgreSQL) on the log tables are refused by
triggers installed by migrations."""

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import Checkpoint, EventLogEntry, GovernanceEvent
from audit.services import record, sign_checkpoint
from tests.helpers import integrate

TABLES = ["audit_governanceevent", "audit_eventlogentry", "audit_checkpoint"]


@pytest.fixture
def logged(db):
    with transaction.atomic():
        for i in range(3):
            record("test.event", actor="system:test", payload={"i": i})
    integrate()
    sign_checkpoint()
    assert Checkpoint.objects.count() == 1


def _refused(sql: str) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


@pytest.mark.parametrize("table", TABLES)
def test_update_is_refused(logged, table):
    column = {
        "audit_governanceevent": "reason",
        "audit_eventlogentry": "key_id",
        "audit_checkpoint": "key_id",
    }[table]
    _refused(f"UPDATE {table} SET {column} = 'x'")


@pytest.mark.parametrize("table", TABLES)
def test_delete_is_refused(logged, table):
    _refused(f"DELETE FROM {table}")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no TRUNCATE")
@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused_on_postgresql(logged, table):
    with connection.cursor() as cursor:
        # Django's foreign keys are deferred; settle them so TRUNCATE reaches the trigger.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    _refused(f"TRUNCATE {table} CASCADE")


def test_orm_writes_are_refused_too(logged):
    with pytest.raises(DatabaseError), transaction.atomic():
        GovernanceEvent.objects.update(reason="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        EventLogEntry.objects.filter(seq=1).delete()
    assert GovernanceEvent.objects.exclude(reason="rewritten").count() == 3


def test_inserting_still_works(logged):
    with transaction.atomic():
        record("test.event", actor="system:test")
    assert integrate() == 1
    assert EventLogEntry.objects.count() == 4
