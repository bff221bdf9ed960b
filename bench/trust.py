"""Trust computation: incremental recompute latency and a full rebuild from the log.

    .venv/bin/python bench/trust.py [--agents 10000] [--events-per-agent 100] [--samples 300]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/warden_bench_trust``; the database is dropped and
re-created). With the defaults it takes a few minutes. Prints, from one run on one machine:

* ``generate``: 10,000 agents and 1,000,000 events (registration, assessment, then sessions
  of allowed / approval / blocked / halted actions, approval outcomes and session ends over
  90 days) written with SQL straight into the log tables (content + log entries with
  placeholder hashes; nothing here checks signatures), not through the request path;
* ``rebuild (first)``: ``rebuild_trust`` over all of it when no agent has a trust state
  yet: the replay, then writing 10,000 states with their history rows and events;
* ``rebuild (steady)``: the same again when every state is current (nothing to write) —
  the replay rate, target ≥ 50,000 events/s; then with one process per CPU
  (``rebuild_trust --workers N``: shards of the agents replayed in parallel);
* ``incremental``: ``recompute_trust`` for one new violation of an agent that has a
  100-event history (median / p95 / max), and the whole path from commit of the
  violation to the agent's new score (event integration + eager task).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_trust"
VAR = ROOT / "var" / "bench-trust"
BASE = datetime(2031, 1, 5, tzinfo=UTC)  # the generated events span BASE … BASE + 90 days


def setup_django(url: str) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ.pop("REDIS_URL", None)  # eager tasks, in-memory channel layer
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("WARDEN_VAR_DIR", str(VAR))
    os.environ.setdefault("WARDEN_LOG_LEVEL", "ERROR")
    import django

    django.setup()


def recreate_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "WARDEN_VAR_DIR": str(VAR)},
        check=True,
    )


# One action.evaluated payload, canonical JSON (sorted keys) of a realistic size.
_ACTION = (
    '\'{"action":{"amount":\' || x.amount || \',"args":{"invoice":"INV-\' || x.k || '
    '\'"},"args_sha256":"\' || md5(x.eid::text) || md5(x.k::text) || \'","currency":\' || '
    'x.currency || \',"name":"\' || x.action || \'","parent_action_id":null,"sensitive":\' '
    '|| x.sensitive || \',"target":"vendor:acme"},"action_id":"\' || x.eid || '
    '\'","approval_id":null,"constrained":false,"effective_tier":2,"in_scope":\' || '
    'x.in_scope || \',"layers":[{"layer":"scope","mode":"enforce","reason":"",'
    '"severity":null,"source":"scope","verdict":"ALLOW"},{"layer":"rules",'
    '"mode":"enforce","reason":"","severity":\' || x.severity || \',"source":"\' || '
    'x.source || \'","verdict":"\' || x.verdict || \'"}],"session_event":\' || '
    '(x.pos + 2) || \',"shadow_verdicts":[],"source":"\' || x.source || '
    "'\",\"violation\":' || x.violation || '}'"
)

GENERATE_EVENTS = f"""
INSERT INTO audit_governanceevent
    (id, timestamp, event_type, agent_id, session_id, workflow_id, run_id, actor, verdict,
     result, reason, payload_json)
SELECT x.eid, x.ts, x.type, x.agent, x.session, NULL, NULL, x.actor, x.verdict, x.result, '',
       CASE
         WHEN x.type = 'agent.registered' THEN
           '{{"description":"","name":"bench-agent-' || x.a || '","owner":"bench"}}'
         WHEN x.type = 'assessment.completed' THEN
           '{{"effective_tier":' || x.risk_tier || ',"risk_percent":"' || x.risk_percent ||
           '","risk_profile_score":"' || (100 - x.risk_percent) || '","risk_tier":' ||
           x.risk_tier || ',"version":1}}'
         WHEN x.type = 'approval.decided' THEN
           '{{"action_id":"' || x.eid || '","approval_id":"' || md5(x.eid::text)::uuid ||
           '","approvals_given":1,"approvals_needed":1,"comment":"","decided_by":"rita",' ||
           '"decision":"' || CASE WHEN x.result = 'rejected' THEN 'reject' ELSE 'approve' END ||
           '","kind":"action"}}'
         WHEN x.type = 'approval.expired' THEN
           '{{"action_id":"' || x.eid || '","approval_id":"' || md5(x.eid::text)::uuid ||
           '","kind":"action"}}'
         WHEN x.type = 'session.ended' THEN
           '{{"action_count":11,"session_event":13,"spend_total":"0.00","status":"ended"}}'
         ELSE {_ACTION}
       END
FROM (
  SELECT y.*,
         CASE WHEN y.type = 'action.evaluated' OR y.type = 'session.ended'
              THEN md5('s' || y.a || ':' || ((y.k - 2) / 12))::uuid END AS session,
         CASE WHEN y.violation <> 'null' THEN 'rule:bench' ELSE '' END AS source,
         CASE WHEN y.verdict = 'REQUIRE_APPROVAL' THEN '"120000.00"' ELSE 'null' END AS amount,
         CASE WHEN y.verdict = 'REQUIRE_APPROVAL' THEN '"USD"' ELSE 'null' END AS currency,
         CASE WHEN y.verdict = 'REQUIRE_APPROVAL' THEN 'contract.commit' ELSE 'invoice.read' END
           AS action,
         CASE WHEN y.verdict = 'REQUIRE_APPROVAL' THEN 'true' ELSE 'false' END AS sensitive,
         CASE WHEN y.violation = 'null' THEN 'null'
              ELSE substring(y.violation FROM 13 FOR length(y.violation) - 13) END AS severity
  FROM (
    SELECT a, k, pos, eid, ts, agent, actor, risk_percent, risk_tier,
           CASE WHEN k = 0 THEN 'agent.registered'
                WHEN k = 1 THEN 'assessment.completed'
                WHEN pos = 11 THEN 'session.ended'
                WHEN h BETWEEN 89 AND 91 THEN 'approval.decided'
                WHEN h BETWEEN 92 AND 93 THEN 'approval.expired'
                ELSE 'action.evaluated' END AS type,
           CASE WHEN k < 2 OR pos = 11 OR h BETWEEN 89 AND 93 THEN NULL
                WHEN h BETWEEN 80 AND 83 THEN 'REQUIRE_APPROVAL'
                WHEN h = 86 THEN 'HALT'
                WHEN h BETWEEN 84 AND 88 OR h BETWEEN 94 AND 95 THEN 'BLOCK'
                ELSE 'ALLOW' END AS verdict,
           CASE WHEN k < 2 OR pos = 11 THEN 'success'
                WHEN h BETWEEN 89 AND 91 THEN CASE WHEN h = 90 THEN 'approved' ELSE 'rejected' END
                WHEN h BETWEEN 92 AND 93 THEN 'expired'
                WHEN h BETWEEN 80 AND 83 THEN 'pending'
                WHEN h BETWEEN 84 AND 88 OR h BETWEEN 94 AND 95 THEN 'denied'
                ELSE 'success' END AS result,
           CASE WHEN h BETWEEN 94 AND 95 THEN 'false' ELSE 'true' END AS in_scope,
           CASE WHEN k < 2 OR pos = 11 THEN 'null'
                WHEN h BETWEEN 84 AND 85 OR h BETWEEN 94 AND 95 THEN '{{"severity":"major"}}'
                WHEN h = 86 THEN '{{"severity":"critical"}}'
                WHEN h BETWEEN 87 AND 88 THEN '{{"severity":"minor"}}'
                ELSE 'null' END AS violation
    FROM (
      SELECT a, k, (k - 2) %% 12 AS pos,
             md5('ev' || a || ':' || k)::uuid AS eid,
             %(base)s::timestamptz + k * (interval '90 days' / %(per)s) + a * interval '311 ms'
               AS ts,
             md5('agent' || a)::uuid AS agent,
             'agent:' || md5('agent' || a)::uuid AS actor,
             (20 + a %% 60)::numeric(5, 2) AS risk_percent,
             CASE WHEN 20 + a %% 60 < 25 THEN 1 WHEN 20 + a %% 60 < 50 THEN 2
                  WHEN 20 + a %% 60 < 75 THEN 3 ELSE 4 END AS risk_tier,
             (hashtext(a || ':' || k) & 2147483647) %% 100 AS h
      FROM generate_series(%(first)s, %(last)s) AS a, generate_series(0, %(per)s - 1) AS k
    ) z
  ) y
) x
"""

GENERATE_LOG = """
INSERT INTO audit_eventlogentry (seq, event_arrival, prev_hash, leaf_hash, signature, key_id)
SELECT n, arrival, repeat('0', 64), md5(n::text) || md5('leaf' || n), repeat('A', 86) || '==',
       'bench00000000000'
FROM (SELECT arrival, row_number() OVER (ORDER BY timestamp, arrival) AS n
      FROM audit_governanceevent) ordered
"""


def generate(agents: int, per_agent: int) -> tuple[int, float]:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from console.models import default_budgets, default_scope

    started = time.perf_counter()
    owner = get_user_model().objects.create_user("bench")
    base = BASE

    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO console_agent (id, name, description, owner_id, status, scope,
                fail_mode, pause_on_halt, approval_ttl_seconds, budgets, risk_percent,
                risk_tier, risk_profile_score, behavioral, alignment, trust_score, trust_tier,
                effective_tier, created_at, updated_at)
            SELECT md5('agent' || a)::uuid, 'bench-agent-' || a, '', %s, 'active', %s::jsonb,
                   'closed', NULL, 1800, %s::jsonb, (20 + a %% 60), rt, 100 - (20 + a %% 60),
                   100, 100, NULL, NULL, rt, %s, %s
            FROM generate_series(0, %s - 1) AS a,
                 LATERAL (SELECT CASE WHEN 20 + a %% 60 < 25 THEN 1 WHEN 20 + a %% 60 < 50
                          THEN 2 WHEN 20 + a %% 60 < 75 THEN 3 ELSE 4 END AS rt) t
            """,
            [
                owner.pk,
                json.dumps(default_scope()),
                json.dumps(default_budgets()),
                base,
                base,
                agents,
            ],
        )
        step = 1000
        for first in range(0, agents, step):
            cursor.execute(
                GENERATE_EVENTS,
                {
                    "base": base,
                    "per": per_agent,
                    "first": first,
                    "last": min(first + step, agents) - 1,
                },
            )
        cursor.execute(GENERATE_LOG)
        cursor.execute("ANALYZE")
        cursor.execute("SELECT count(*) FROM audit_eventlogentry")
        total = cursor.fetchone()[0]
    return total, time.perf_counter() - started


def incremental(samples: int, start: datetime) -> dict:
    import uuid
    from unittest import mock

    from django.db import transaction

    from audit.services import record
    from console.models import Agent
    from trust import hooks, services

    agents = list(Agent.objects.order_by("name").values_list("id", flat=True)[:samples])
    recompute, end_to_end = [], []
    clock = mock.patch("django.utils.timezone.now")
    now = clock.start()  # the new violations happen after the replayed history
    for index, agent_id in enumerate(agents):
        now.return_value = start + timedelta(seconds=index)
        payload = {
            "action_id": uuid.uuid4(),
            "source": "rule:bench",
            "action": {"name": "contract.commit", "target": "vendor:acme"},
            "in_scope": True,
            "violation": {"severity": "minor"},
        }
        if index % 2 == 0:
            # The service alone, on an integrated event.
            with transaction.atomic():
                event = record(
                    "action.evaluated",
                    actor=f"agent:{agent_id}",
                    agent_id=agent_id,
                    verdict="BLOCK",
                    result="denied",
                    payload=payload,
                )
            started = time.perf_counter()
            services.recompute_trust(agent_id, event.id)
            recompute.append(time.perf_counter() - started)
        else:
            # Commit of the violation → after-commit integration → eager task → new score.
            started = time.perf_counter()
            with transaction.atomic():
                event = record(
                    "action.evaluated",
                    actor=f"agent:{agent_id}",
                    agent_id=agent_id,
                    verdict="BLOCK",
                    result="denied",
                    payload=payload,
                )
                hooks.event_recorded(event)
            end_to_end.append(time.perf_counter() - started)
    clock.stop()
    return {"recompute": recompute, "end_to_end": end_to_end}


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms, "
        f"max {ordered[-1] * 1000:.2f} ms (n={len(ordered)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--events-per-agent", type=int, default=100)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    VAR.mkdir(parents=True, exist_ok=True)
    print(f"database {url}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    recreate_database(url)
    setup_django(url)

    from trust.services import rebuild_trust

    total, seconds = generate(args.agents, args.events_per_agent)
    print(f"generate          {args.agents:,} agents, {total:,} events in {seconds:.1f} s (SQL)")

    # The clock of the replay: one day after the generated 90 days, so every day boundary
    # of the span (recovery, upgrades, velocity) is evaluated.
    now = BASE + timedelta(days=91)
    workers = os.cpu_count() or 1
    runs = [("rebuild (first) ", 1), ("rebuild (steady)", 1)]
    if workers > 1:
        runs.append((f"rebuild ({workers} procs)", workers))
    for label, procs in runs:
        report = rebuild_trust(now=now, workers=procs)
        print(
            f"{label}  {report.events:,} events of {report.agents:,} agents replayed in "
            f"{report.compute_seconds:.2f} s = {report.events_per_second:,.0f} events/s; "
            f"then {report.write_seconds:.2f} s comparing/writing "
            f"({report.initialized:,} initialised, {report.corrected:,} corrected, "
            f"{report.unchanged:,} unchanged)"
        )
    timings = incremental(args.samples, now + timedelta(hours=1))
    print(f"incremental       recompute_trust after one violation: {_ms(timings['recompute'])}")
    print(
        f"                  commit → score updated (integration + task): {_ms(timings['end_to_end'])}"
    )
    print(f"load at the end   {os.getloadavg()[0]:.2f} (2 cores shared: figures are noisy)")


if __name__ == "__main__":
    main()
