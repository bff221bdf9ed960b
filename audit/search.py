"""Free-text search of the audit log (SPEC §7), the same on PostgreSQL and SQLite.

What it matches: a case-insensitive substring (at least three characters) of an event's
``reason`` or of its payload's canonical JSON text (action names, targets, arguments as
redacted, outputs, comments …). The same semantics on both databases:

* PostgreSQL: ``(reason || ' ' || payload_json) ILIKE '%term%'``, served by a trigram GIN
  index on that expression (``pg_trgm``, a trusted extension: the database owner may
  install it; migration ``audit.0004`` does, and if it may not, search still works,
  unindexed). A trigram index needs three characters to narrow anything, hence the minimum.
* SQLite (embedded mode): the same expression with ``LIKE`` (case-insensitive for ASCII,
  which covers the text Warden writes). No index: SQLite walks the log newest first and
  stops at the page size, so common terms answer at once and a rare term costs one scan of
  the table (see ``bench/export.py`` for the measured figure). Embedded mode is meant for one
  machine's worth of agents; production runs PostgreSQL.

Keeping the index current: GIN puts new entries in a pending list (its "fast update") and
merges the list into the index when it outgrows ``gin_pending_list_limit`` (4 MB by
default). The insert that crosses the limit does the merge, in its own transaction: some
40 ms measured for about 260 governed-action events, and on the governed path that
transaction holds the agent's lock, so every proposal of the agent waited behind it (the
paced p99 of ``bench/evaluate.py``). So the integrator merges the list itself, after every
``MERGE_EVERY`` events of the log (``merge_pending_if_due``), outside any lock; an event
large enough to fill the list on its own is still merged by its insert. Autovacuum merges
it too, but an insert-only table is vacuumed less and less often as it grows.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.db.models import Lookup, TextField
from django.db.models.expressions import RawSQL

log = logging.getLogger("warden.audit")

MIN_LENGTH = 3
# Events between two merges of the index's pending list: about 2 MB of pending entries for
# governed-action events (some 8 KB of trigram entries per KB of text), half the limit.
MERGE_EVERY = 128
INDEX_NAME = "audit_event_text_trgm"
_EXPRESSION = "(reason || ' ' || payload_json)"


class SearchText(TextField):
    """Output field of the searchable text; carries the ``contains_text`` lookup."""


@SearchText.register_lookup
class ContainsText(Lookup):
    lookup_name = "contains_text"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        operator = "ILIKE" if connection.vendor == "postgresql" else "LIKE"
        return f"{lhs} {operator} {rhs} ESCAPE '\\'", [*lhs_params, *rhs_params]

    def get_db_prep_lookup(self, value, connection):
        escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return "%s", [f"%{escaped}%"]


def search_text() -> RawSQL:
    """The searchable text of an event, as an expression to annotate and filter on."""
    # The expression must be written exactly as in the index for PostgreSQL to use it.
    return RawSQL(_EXPRESSION, [], output_field=SearchText())


def install_sql(vendor: str) -> list[str]:
    if vendor != "postgresql":
        return []
    return [
        f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON audit_governanceevent "
        f"USING gin ({_EXPRESSION} gin_trgm_ops)"
    ]


def drop_sql(vendor: str) -> list[str]:
    return [f"DROP INDEX IF EXISTS {INDEX_NAME}"] if vendor == "postgresql" else []


def merge_due(size_before: int, size_after: int) -> bool:
    """Whether a pass that took the log from ``size_before`` to ``size_after`` events
    crossed a multiple of ``MERGE_EVERY``: passes are serial, so exactly one pass (in one
    process) crosses each."""
    return size_after // MERGE_EVERY > size_before // MERGE_EVERY


def merge_pending_if_due(size_before: int, size_after: int) -> int:
    """Merge the search index's pending list now if this pass is due (module docstring);
    returns how many pending pages were merged. PostgreSQL, outside a transaction (the
    merge locks the list until it commits). A failure (an index owned by another role, say)
    is logged: the insert that fills the list merges it, as without this."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 0
    if not merge_due(size_before, size_after):
        return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT gin_clean_pending_list(i) FROM to_regclass(%s) AS i WHERE i IS NOT NULL",
                [INDEX_NAME],
            )
            row = cursor.fetchone()
    except DatabaseError:
        log.warning("merging the search index's pending list failed", exc_info=True)
        return 0
    return row[0] if row else 0
