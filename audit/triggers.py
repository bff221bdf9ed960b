"""Database triggers that make the log tables append-only (SPEC §6.2).

Installed by migration ``audit.0002``; the same SQL is used by tests that simulate an
attacker who drops them. UPDATE and DELETE are refused on PostgreSQL and SQLite, TRUNCATE
on PostgreSQL (SQLite has no TRUNCATE).
"""

from __future__ import annotations

APPEND_ONLY_TABLES = ("audit_governanceevent", "audit_eventlogentry", "audit_checkpoint")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION warden_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'warden: % is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END
$$;
"""


def install_sql(vendor: str) -> list[str]:
    statements: list[str] = []
    if vendor == "postgresql":
        statements.append(_PG_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            statements.append(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION warden_refuse_change();"
            )
            statements.append(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION warden_refuse_change();"
            )
    elif vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
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
    for table in APPEND_ONLY_TABLES:
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
