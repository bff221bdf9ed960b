"""Triggers that refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL) of trust history rows."""

from django.db import migrations

from trust import triggers


def install(apps, schema_editor):
    for statement in triggers.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in triggers.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("trust", "0001_initial"),
        # PostgreSQL: the triggers call warden_refuse_change(), created there.
        ("audit", "0002_append_only_triggers"),
    ]

    operations = [migrations.RunPython(install, remove)]
