"""Action rollups per second / minute / hour / day, kept by a trigger on console_action,
backfilled from the actions already recorded (see console.authorize.rollups)."""

from django.db import migrations, models

from console.authorize import rollups


def install(apps, schema_editor):
    for statement in rollups.install_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in rollups.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("console", "0004_action_indexes")]

    operations = [
        migrations.CreateModel(
            name="ActionRollup",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "agent_id",
                        "resolution",
                        "start",
                        "name",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("agent_id", models.UUIDField()),
                ("resolution", models.IntegerField()),
                ("start", models.BigIntegerField()),
                ("name", models.CharField(max_length=200)),
                ("count", models.BigIntegerField(default=0)),
                ("amount", models.DecimalField(decimal_places=2, default=0, max_digits=24)),
                (
                    "committed_amount",
                    models.DecimalField(decimal_places=2, default=0, max_digits=24),
                ),
            ],
        ),
        migrations.RunPython(install, remove),
    ]
