"""Audit log exports, query plans and proof verification at a million events (SPEC §7).

    .venv/bin/python bench/export.py [--events 1000000] [--session-events 10000]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/warden_bench_export``; the database is dropped and
re-created). Generates the events in bulk with SQL (content, log fields, one checkpoint),
then prints, from one run on one machine:

* ``csv floor``: a plain ``csv.writer`` over the export query's rows (the same query and
  batches the export uses) — the floor; ``csv export``: Warden's export of the same rows
  (count, CSV-injection escaping, SHA-256, manifest and ``export.created`` event included);
  rows/s, the ratio to the floor (target ≥ 50%) and each one's peak memory (target < 300 MB);
* ``xlsx floor`` / ``xlsx export``: the same with a bare xlsxwriter ``constant_memory``
  workbook and Warden's .xlsx writer;
* the query plan (``EXPLAIN ANALYZE``) of the audit log page for each filter;
* a 10,000-event session: how long its proof certificate takes to build (the first time
  fills the tile cache for the whole log) and to verify with ``python -m audit.verify``
  (target < 2 s);
* free text on SQLite (embedded mode), where it is a scan: a rare term over the same
  number of events.

Every measurement runs in its own process, so peak memory (``ru_maxrss``) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_export"
VAR = ROOT / "var" / "bench-export"

# One realistic action.evaluated payload (docs/events.md), ~900 bytes of canonical JSON.
PAYLOAD_SQL = """
'{"action":{"amount":"' || mod(i, 250000) || '.00","args":{"contract":"C-' || i || '","email":"[redacted:email]","po":"PO-' || mod(i, 9973) || '"},"args_sha256":"' || md5(i::text) || md5((i * 7)::text) || '","currency":"USD","name":"' || (array['contract.commit','invoice.read','invoice.flag','review.route'])[1 + mod(i, 4)] || '","parent_action_id":null,"sensitive":true,"target":"vendor:' || (array['acme','globex','initech','umbrella','hooli'])[1 + mod(i, 5)] || '"},"action_id":"' || md5(('a' || i)::text)::uuid || '","approval_id":null,"constrained":false,"effective_tier":3,"in_scope":true,"layers":[{"layer":"budgets","mode":"enforce","reason":"","severity":null,"source":"budget:session_spend","verdict":"ALLOW"},{"layer":"scope","mode":"enforce","reason":"","severity":null,"source":"scope","verdict":"ALLOW"},{"layer":"rules","mode":"enforce","reason":"over 250k in 72 h","severity":"major","source":"rule:contract-cumulative","verdict":"' || (array['ALLOW','BLOCK','HALT','REQUIRE_APPROVAL'])[1 + mod(i, 4)] || '"}],"session_event":' || (1 + mod(i, 40)) || ',"shadow_verdicts":[],"source":"rule:contract-cumulative","violation":null}'
"""

GENERATE_SQL = f"""
INSERT INTO audit_governanceevent
    (id, timestamp, event_type, agent_id, session_id, workflow_id, run_id, actor, verdict,
     result, reason, payload_json)
SELECT md5(i::text)::uuid,
       timestamp '2026-01-01' + i * interval '25 ms',
       CASE WHEN mod(i, 10) = 0 THEN 'approval.requested' ELSE 'action.evaluated' END,
       ('00000000-0000-0000-0000-' || lpad(mod(i, 50)::text, 12, '0'))::uuid,
       md5(('s' || (i / 40))::text)::uuid,
       'wf-' || mod(i, 7),
       md5(('r' || (i / 40))::text)::uuid,
       'agent:00000000-0000-0000-0000-' || lpad(mod(i, 50)::text, 12, '0'),
       (array['ALLOW','BLOCK','HALT','REQUIRE_APPROVAL'])[1 + mod(i, 4)],
       (array['success','denied','denied','pending'])[1 + mod(i, 4)],
       'bulk event ' || i || CASE WHEN mod(i, 100000) = 7 THEN ' needle-zebra' ELSE '' END,
       {PAYLOAD_SQL}
FROM generate_series(%(start)s, %(stop)s) AS i
"""

LOG_SQL = """
INSERT INTO audit_eventlogentry (seq, event_arrival, prev_hash, leaf_hash, signature, key_id)
SELECT arrival, arrival,
       CASE WHEN arrival = 1 THEN repeat('0', 64) ELSE md5((arrival - 1)::text) || md5((arrival + 1000000000 - 1)::text) END,
       md5(arrival::text) || md5((arrival + 1000000000)::text),
       replace(encode(sha512(arrival::text::bytea), 'base64'), E'\\n', ''),
       'bench00000000000'
FROM audit_governanceevent WHERE arrival BETWEEN %(start)s AND %(stop)s
"""


def env_for(url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "WARDEN_VAR_DIR": str(VAR),
        "WARDEN_EXPORT_DIR": str(VAR / "exports"),
        "WARDEN_EXPORT_ASYNC_ROWS": str(10**9),  # measure the export itself, in-process
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }


def setup_django(url: str) -> None:
    os.environ.update(env_for(url))
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- phases, each run in a child process -------------------------------------------
def phase_generate(url: str, events: int) -> dict:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env_for(url), check=True
    )
    started = time.perf_counter()
    step = 200_000
    with psycopg.connect(url, autocommit=True) as conn:
        # Bulk load without the trigram index, then build it once (much faster).
        conn.execute("DROP INDEX audit_event_text_trgm")
        for start in range(1, events + 1, step):
            stop = min(start + step - 1, events)
            conn.execute(GENERATE_SQL, {"start": start, "stop": stop})
            conn.execute(LOG_SQL, {"start": start, "stop": stop})
        index_started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '256MB'")
        from audit.search import install_sql

        for statement in install_sql("postgresql"):
            conn.execute(statement)
        index_seconds = time.perf_counter() - index_started
        conn.execute("VACUUM ANALYZE audit_governanceevent")
        conn.execute("VACUUM ANALYZE audit_eventlogentry")
        sizes = conn.execute(
            "SELECT pg_size_pretty(pg_relation_size('audit_governanceevent')),"
            " pg_size_pretty(pg_total_relation_size('audit_governanceevent')),"
            " pg_size_pretty(pg_relation_size('audit_event_text_trgm'))"
        ).fetchone()
    generated = time.perf_counter() - started
    setup_django(url)
    from django.contrib.auth import get_user_model

    from audit.services import sign_checkpoint

    get_user_model().objects.create_user("bench", password="bench-password-123")
    sign_checkpoint()  # the log normally has one every 1,000 events
    return {
        "events": events,
        "generate_seconds": round(generated, 1),
        "trigram_build_seconds": round(index_seconds, 1),
        "table": sizes[0],
        "table_with_indexes": sizes[1],
        "trigram_index": sizes[2],
    }


def _flt():
    from audit.filters import LogFilter

    return LogFilter.parse({})


def phase_csv_floor(url: str) -> dict:
    setup_django(url)
    import csv

    from audit import selectors
    from audit.services import EXPORT_BATCH, log_size

    started = time.perf_counter()
    rows = 0
    with open(VAR / "floor.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for batch in selectors.export_batches(_flt(), log_size(), size=EXPORT_BATCH):
            writer.writerows(batch)
            rows += len(batch)
    return {"rows": rows, "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}


def phase_csv_export(url: str) -> dict:
    setup_django(url)
    from django.contrib.auth import get_user_model

    from audit import services

    user = get_user_model().objects.get(username="bench")
    started = time.perf_counter()
    export = services.start_export(_flt(), "csv", by=user)
    with open(VAR / "export.csv", "wb") as handle:
        for chunk in services.stream_csv(export):
            handle.write(chunk)
    seconds = time.perf_counter() - started
    export.refresh_from_db()
    assert export.status == "done", export.error
    return {
        "rows": export.manifest["row_count"],
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "bytes": export.manifest["bytes"],
    }


def phase_xlsx_floor(url: str) -> dict:
    setup_django(url)
    import xlsxwriter

    from audit import selectors
    from audit.services import EXPORT_BATCH, log_size

    started = time.perf_counter()
    book = xlsxwriter.Workbook(str(VAR / "floor.xlsx"), {"constant_memory": True})
    book.use_zip64()
    sheet = book.add_worksheet()
    row = 0
    for batch in selectors.export_batches(_flt(), log_size(), size=EXPORT_BATCH):
        for values in batch:
            if row >= 1_048_575:
                sheet, row = book.add_worksheet(), 0
            sheet.write_row(row, 0, values)
            row += 1
    book.close()
    return {"rows": row, "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}


def phase_xlsx_export(url: str) -> dict:
    setup_django(url)
    from django.contrib.auth import get_user_model

    from audit import services

    user = get_user_model().objects.get(username="bench")
    started = time.perf_counter()
    export = services.start_export(_flt(), "xlsx", by=user)
    services.run_export(export.id)
    seconds = time.perf_counter() - started
    export.refresh_from_db()
    assert export.status == "done", export.error
    return {
        "rows": export.manifest["row_count"],
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "bytes": export.manifest["bytes"],
    }


EXPLAINS = {
    "no filter": {},
    "agent": {"agent": "00000000-0000-0000-0000-000000000007"},
    "event_type (rare)": {"event_type": "approval.requested"},
    "actor": {"actor": "agent:00000000-0000-0000-0000-000000000007"},
    "verdict": {"verdict": "HALT"},
    "result": {"result": "pending"},
    "date range (1 h)": {"from": "2026-01-01T03:00:00Z", "to": "2026-01-01T04:00:00Z"},
    "agent + date range": {
        "agent": "00000000-0000-0000-0000-000000000007",
        "from": "2026-01-01T03:00:00Z",
        "to": "2026-01-01T04:00:00Z",
    },
    "free text (common)": {"q": "vendor:globex"},
    "free text (rare)": {"q": "needle-zebra"},
    "session": {"session": None},  # filled in with a real session id
}


def phase_explain(url: str) -> dict:
    setup_django(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from audit.filters import LogFilter
    from audit.models import GovernanceEvent
    from audit.selectors import log_page

    middle = GovernanceEvent.objects.count() // 2
    session = GovernanceEvent.objects.order_by("arrival").values_list("session_id", flat=True)[
        middle
    ]
    plans = {}
    for label, params in EXPLAINS.items():
        if "session" in params:
            params = {"session": str(session)}
        flt = LogFilter.parse(params)
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            rows = len(log_page(flt).events)
        page_ms = (time.perf_counter() - started) * 1000
        # The page's own query, as it ran (parameters inlined by the driver).
        sql = next(q["sql"] for q in queries.captured_queries if "LIMIT 51" in q["sql"])
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            lines = [row[0] for row in cursor.fetchall()]
        nodes = [
            line.strip().removeprefix("->  ").split("  (")[0]
            for line in lines
            if "Scan" in line or "Sort" in line
        ]
        execution = next((line for line in lines if line.startswith("Execution Time")), "")
        plans[label] = {"rows": rows, "page_ms": round(page_ms, 1), "plan": nodes, "db": execution}
    return plans


def phase_session(url: str, count: int) -> dict:
    setup_django(url)
    import uuid

    from django.db import transaction

    from audit import proofs
    from audit.keys import keyring
    from audit.services import integrate_pending, record

    session = uuid.uuid4()
    agent = uuid.uuid4()
    for start in range(0, count, 1000):
        with transaction.atomic():
            for i in range(start, min(start + 1000, count)):
                kind = (
                    "session.started"
                    if i == 0
                    else "session.ended"
                    if i == count - 1
                    else "action.evaluated"
                )
                record(
                    kind,
                    actor=f"agent:{agent}",
                    agent_id=agent,
                    session_id=session,
                    verdict="ALLOW" if kind == "action.evaluated" else None,
                    reason="bench",
                    payload={
                        "action": {
                            "name": "invoice.read",
                            "target": "vendor:acme",
                            "args": {"i": i},
                        }
                    },
                )
    integrate_pending(wait=True)
    started = time.perf_counter()
    cert = proofs.certificate(session)
    first_build = time.perf_counter() - started
    started = time.perf_counter()
    proofs.certificate(session)
    second_build = time.perf_counter() - started
    cert_path = VAR / "session-proof.json"
    keys_path = VAR / "warden-keys.json"
    cert_path.write_text(json.dumps(cert))
    keys_path.write_text(json.dumps({"keys": [k.as_json() for k in keyring().public_keys()]}))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "audit.verify", str(cert_path), "--keys", str(keys_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    verify_seconds = time.perf_counter() - started
    return {
        "events": len(cert["events"]),
        "tree_size": cert["checkpoint"]["tree_size"],
        "certificate_mb": round(cert_path.stat().st_size / 2**20, 1),
        "first_build_s": round(first_build, 2),
        "cached_build_s": round(second_build, 2),
        "verify_s": round(verify_seconds, 2),
        "verify_exit": result.returncode,
        "verify_says": result.stdout.splitlines()[0][:100]
        if result.stdout
        else result.stderr[:200],
    }


def phase_sqlite_text(events: int) -> dict:
    """Embedded mode's free text is a scan: the cost of a rare term over ``events`` rows."""
    with tempfile.TemporaryDirectory() as directory:
        db = sqlite3.connect(os.path.join(directory, "text.sqlite3"))
        db.execute("CREATE TABLE e (arrival INTEGER PRIMARY KEY, reason TEXT, payload_json TEXT)")
        payload = (
            '{"action":{"amount":"120000.00","args":{"contract":"C-%d"},"name":"contract.commit",'
            '"target":"vendor:acme"},"layers":[{"layer":"scope","verdict":"ALLOW"}],'
            '"source":"rule:contract-cumulative","padding":"' + "x" * 600 + '"}'
        )
        db.executemany(
            "INSERT INTO e (reason, payload_json) VALUES (?, ?)",
            (
                (f"bulk event {i}" + (" needle-zebra" if i % 100000 == 7 else ""), payload % i)
                for i in range(events)
            ),
        )
        db.commit()
        timings = {}
        for term in ("vendor:acme", "needle-zebra", "not-there-at-all"):
            started = time.perf_counter()
            rows = db.execute(
                "SELECT arrival FROM e WHERE (reason || ' ' || payload_json) LIKE ? "
                "ORDER BY arrival DESC LIMIT 51",
                (f"%{term}%",),
            ).fetchall()
            timings[term] = {"rows": len(rows), "ms": round((time.perf_counter() - started) * 1000)}
        db.close()
    return timings


PHASES = {
    "generate": phase_generate,
    "csv_floor": phase_csv_floor,
    "csv_export": phase_csv_export,
    "xlsx_floor": phase_xlsx_floor,
    "xlsx_export": phase_xlsx_export,
    "explain": phase_explain,
    "session": phase_session,
}


def child(phase: str, *args) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", phase, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--session-events", type=int, default=10_000)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database of the previous run (no generation)"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if args.child:
        phase, *rest = args.child
        rest = [int(value) for value in rest]
        print(json.dumps(PHASES[phase](url, *rest)))
        return
    VAR.mkdir(parents=True, exist_ok=True)
    print(
        f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores; figures are noisy on a shared machine"
    )
    if args.reuse:
        print("reusing the database of the previous run")
    else:
        made = child("generate", args.events)
        print(
            f"generated {made['events']:,} events in {made['generate_seconds']} s (trigram index "
            f"built in {made['trigram_build_seconds']} s); table {made['table']}, with indexes "
            f"{made['table_with_indexes']}, trigram index {made['trigram_index']}"
        )
    results = {
        name: child(name) for name in ("csv_floor", "csv_export", "xlsx_floor", "xlsx_export")
    }
    print(f"\n{'':14}{'rows':>11}{'seconds':>10}{'rows/s':>11}{'peak MB':>10}{'vs floor':>10}")
    for fmt in ("csv", "xlsx"):
        floor = results[f"{fmt}_floor"]
        for name in (f"{fmt}_floor", f"{fmt}_export"):
            r = results[name]
            rate = r["rows"] / r["seconds"]
            ratio = rate / (floor["rows"] / floor["seconds"])
            print(
                f"{name.replace('_', ' '):14}{r['rows']:>11,}{r['seconds']:>10.1f}{rate:>11,.0f}"
                f"{r['peak_mb']:>10.0f}{ratio:>9.0%}"
            )
    csv_ratio = (results["csv_export"]["rows"] / results["csv_export"]["seconds"]) / (
        results["csv_floor"]["rows"] / results["csv_floor"]["seconds"]
    )
    peak = max(results["csv_export"]["peak_mb"], results["xlsx_export"]["peak_mb"])
    print(
        f"targets: CSV export ≥ 50% of the floor: {'met' if csv_ratio >= 0.5 else 'MISSED'} "
        f"({csv_ratio:.0%}); peak memory < 300 MB: {'met' if peak < 300 else 'MISSED'} ({peak:.0f} MB)"
    )

    print("\naudit log page (50 newest), EXPLAIN ANALYZE on PostgreSQL:")
    for label, plan in child("explain").items():
        print(f"  {label:22} {plan['rows']:>3} rows  page {plan['page_ms']:>7.1f} ms  {plan['db']}")
        for node in plan["plan"]:
            print(f"  {'':22}   {node}")

    session = child("session", args.session_events)
    print(
        f"\nproof certificate of a {session['events']:,}-event session (tree of "
        f"{session['tree_size']:,}, {session['certificate_mb']} MB): built in "
        f"{session['first_build_s']} s the first time (fills the tile cache), "
        f"{session['cached_build_s']} s after; python -m audit.verify: {session['verify_s']} s "
        f"(exit {session['verify_exit']}; target < 2 s: {'met' if session['verify_s'] < 2 else 'MISSED'})"
    )
    print(f"  {session['verify_says']}")

    text = phase_sqlite_text(args.events)
    print(f"\nSQLite free text over {args.events:,} events (a scan, newest first, LIMIT 51):")
    for term, timing in text.items():
        print(f"  {term!r:22} {timing['rows']:>3} rows in {timing['ms']:>6} ms")


if __name__ == "__main__":
    main()
