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
"""

from __future__ import annotations

from django.db.models import Lookup, TextField
from django.db.models.expressions import RawSQL

MIN_LENGTH = 3
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
