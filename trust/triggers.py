"""Database triggers that make the trust history append-only (SPEC §5.5).

The same approach as the event log (``audit/triggers.py``): UPDATE and DELETE are refused
on PostgreSQL and SQLite, TRUNCATE on PostgreSQL. On PostgreSQL the triggers call the
``warden_refuse_change()`` function that migration ``audit.0002`` creates, so migration
``trust.0002`` depends on it. The test suite lifts them only around the flush that ends a
transactional test.
"""

from __future__ import annotations

TABLES = ("trust_trusthistory",)


def install_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in TABLES:
        if vendor == "postgresql":
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
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
            raise RuntimeError(f"append-only triggers are not written for {vendor}")
    return statements


def drop_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    for table in TABLES:
        if vendor == "postgresql":
            statements.append(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
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
