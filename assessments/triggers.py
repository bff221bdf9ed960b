"""Database triggers that make stored assessment versions immutable (SPEC §2).

The same approach as the event log (``audit/triggers.py``): UPDATE and DELETE are refused
on PostgreSQL and SQLite, TRUNCATE on PostgreSQL. On PostgreSQL the triggers call the
``warden_refuse_change()`` function that migration ``audit.0002`` creates, so migration
``assessments.0002`` depends on it. Installed by that migration; the test suite lifts them
only around the flush that ends a transactional test.
"""

from __future__ import annotations

TABLES = ("assessments_riskassessment",)


def install_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in TABLES:
        if vendor == "postgresql":
            statements.append(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION warden_refuse_change();"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION warden_refuse_change();"
            )
        elif vendor == "sqlite":
            for op in ("UPDATE", "DELETE"):
                statements.append(
                    f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'warden: {table} is append-only; {op} refused'); END;"
                )
        else:  # pragma: no cover - Warden supports PostgreSQL and SQLite only
            raise RuntimeError(f"immutability triggers are not written for {vendor}")
    return statements


def drop_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in TABLES:
        if vendor == "postgresql":
            statements.append(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table};")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};")
        else:
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_update;")
            statements.append(f"DROP TRIGGER IF EXISTS {table}_no_delete;")
    return statements


def install(connection) -> None:
    with connection.cursor() as cursor:
        for statement in install_sql(connection.vendor):
            cursor.execute(statement)


def drop(connection) -> None:
    with connection.cursor() as cursor:
        for statement in drop_sql(connection.vendor):
            cursor.execute(statement)
