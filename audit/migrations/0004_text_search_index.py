"""Trigram index for the audit log's free-text search on PostgreSQL (audit/search.py)."""

import logging

from django.db import migrations, transaction

from audit import search

log = logging.getLogger("warden.audit")


def install(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    except Exception:  # noqa: BLE001 - search works without the index, only slower
        log.warning("pg_trgm could not be installed: audit log free text stays unindexed")
        return
    for statement in search.install_sql(connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in search.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_log_filters_tiles_exports")]

    operations = [migrations.RunPython(install, remove)]
