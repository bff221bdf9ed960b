"""The integrator keeps the audit search index's pending list short (audit/search.py)."""

import pytest
from django.db import connection, transaction

from audit import search
from audit.services import log_size, record

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigram index is PostgreSQL's"
)


@pytest.mark.parametrize(
    ("before", "after", "due"),
    [
        (0, 127, False),
        (0, 128, True),
        (127, 128, True),
        (128, 255, False),
        (200, 300, True),
        (0, 1000, True),
    ],
)
def test_a_merge_is_due_when_a_pass_crosses_a_multiple(before, after, due):
    assert search.merge_due(before, after) is due


def record_events(count: int) -> None:
    with transaction.atomic():
        for i in range(count):
            record(
                "test.event",
                actor="system:test",
                reason=f"searchable reason {i}",
                payload={"note": f"vendor:acme-{i} invoice INV-{i} duplicate line items"},
            )


def pending_pages() -> int:
    """Merges the pending list and says how many pages it had."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [search.INDEX_NAME])
        return cursor.fetchone()[0]


@postgresql_only
def test_the_pass_that_crosses_a_multiple_merges_the_pending_list(transactional_db):
    # The suite integrates inline, after each commit.
    record_events(search.MERGE_EVERY - 1)
    assert log_size() == search.MERGE_EVERY - 1
    # Not yet due: the entries wait in the pending list (what the next check relies on).
    assert pending_pages() > 0

    record_events(search.MERGE_EVERY - 1)
    assert log_size() == 2 * search.MERGE_EVERY - 2  # this pass crossed 128
    assert pending_pages() == 0


@postgresql_only
def test_no_merge_inside_a_callers_transaction(transactional_db):
    record_events(3)
    with transaction.atomic():
        assert search.merge_pending_if_due(0, search.MERGE_EVERY) == 0
    assert pending_pages() > 0


@postgresql_only
def test_a_failed_merge_is_logged_not_raised(transactional_db, monkeypatch, caplog):
    monkeypatch.setattr(search, "INDEX_NAME", "no such index (")
    assert search.merge_pending_if_due(0, search.MERGE_EVERY) == 0
    assert "pending list failed" in caplog.text
