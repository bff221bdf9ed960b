"""The trigger that keeps ``ActionRollup`` (installed by a migration, both vendors).

Every row inserted into ``console_action`` adds itself to the four buckets it falls in
(``buckets.RESOLUTIONS``), in the same statement's transaction: whatever inserts an
action (the pipeline, a test, an import) keeps the rollups right. ``console_action`` is
never deleted from and its ``name``, ``amount``, ``verdict`` and ``created_at`` never
change, so inserts are all the trigger has to follow.
"""

from __future__ import annotations

from .buckets import RESOLUTIONS

ACTIONS = "console_action"
ROLLUPS = "console_actionrollup"
COMMITTED = "('ALLOW', 'REQUIRE_APPROVAL')"

_SIZES = ", ".join(str(size) for size in sorted(RESOLUTIONS))
_UPSERT_TAIL = (
    "ON CONFLICT (agent_id, resolution, start, name) DO UPDATE SET "
    f"count = {ROLLUPS}.count + 1, "
    f"amount = {ROLLUPS}.amount + excluded.amount, "
    f"committed_amount = {ROLLUPS}.committed_amount + excluded.committed_amount"
)

POSTGRESQL = [
    f"""
CREATE OR REPLACE FUNCTION {ACTIONS}_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    second bigint := floor(extract(epoch FROM NEW.created_at))::bigint;
BEGIN
    INSERT INTO {ROLLUPS} (agent_id, resolution, start, name, count, amount, committed_amount)
    SELECT NEW.agent_id, size, second - second % size, NEW.name, 1,
           coalesce(NEW.amount, 0),
           CASE WHEN NEW.verdict IN {COMMITTED} THEN coalesce(NEW.amount, 0) ELSE 0 END
    FROM unnest(ARRAY[{_SIZES}]) AS size
    {_UPSERT_TAIL};
    RETURN NULL;
END $$
""",
    f"CREATE TRIGGER {ACTIONS}_rollup AFTER INSERT ON {ACTIONS} "
    f"FOR EACH ROW EXECUTE FUNCTION {ACTIONS}_rollup()",
]

_SQLITE_SIZES = " UNION ALL ".join(f"SELECT {size} AS size" for size in sorted(RESOLUTIONS))
SQLITE = [
    f"""
CREATE TRIGGER {ACTIONS}_rollup AFTER INSERT ON {ACTIONS} FOR EACH ROW BEGIN
    INSERT INTO {ROLLUPS} (agent_id, resolution, start, name, count, amount, committed_amount)
    SELECT NEW.agent_id, sizes.size,
           CAST(strftime('%s', substr(NEW.created_at, 1, 19)) AS INTEGER)
               / sizes.size * sizes.size,
           NEW.name, 1, coalesce(NEW.amount, 0),
           CASE WHEN NEW.verdict IN {COMMITTED} THEN coalesce(NEW.amount, 0) ELSE 0 END
    FROM ({_SQLITE_SIZES}) AS sizes WHERE true
    {_UPSERT_TAIL};
END
"""
]

DROP = {
    "postgresql": [
        f"DROP TRIGGER IF EXISTS {ACTIONS}_rollup ON {ACTIONS}",
        f"DROP FUNCTION IF EXISTS {ACTIONS}_rollup()",
    ],
    "sqlite": [f"DROP TRIGGER IF EXISTS {ACTIONS}_rollup"],
}


def _second(vendor: str) -> str:
    if vendor == "postgresql":
        return "floor(extract(epoch FROM created_at))::bigint"
    # SQLite keeps times to the millisecond, rounded: 59.9995 s would become the next
    # second. Django stores "YYYY-MM-DD HH:MM:SS.ffffff"; the first 19 characters are the
    # whole second.
    return "CAST(strftime('%s', substr(created_at, 1, 19)) AS INTEGER)"


def backfill_sql(vendor: str) -> str:
    """Rollups of the actions already recorded (run once, before the trigger exists)."""
    second = _second(vendor)
    sizes = (
        f"unnest(ARRAY[{_SIZES}]) AS sizes(size)"
        if vendor == "postgresql"
        else f"({_SQLITE_SIZES}) AS sizes"
    )
    return (
        f"INSERT INTO {ROLLUPS} "
        "(agent_id, resolution, start, name, count, amount, committed_amount) "
        f"SELECT agent_id, size, {second} / size * size AS bucket, name, COUNT(*), "
        "coalesce(SUM(amount), 0), "
        f"coalesce(SUM(CASE WHEN verdict IN {COMMITTED} THEN amount END), 0) "
        f"FROM {ACTIONS}, {sizes} GROUP BY agent_id, size, bucket, name"
    )


def install_sql(vendor: str) -> list[str]:
    return [backfill_sql(vendor), *(POSTGRESQL if vendor == "postgresql" else SQLITE)]


def drop_sql(vendor: str) -> list[str]:
    return DROP.get(vendor, [])
