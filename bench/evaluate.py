"""Governed proposals per second and latency, against a bare endpoint, on one server.

    .venv/bin/python bench/evaluate.py [--seconds 10] [--clients 32] [--workers 3]
                                       [--integrator thread|inline|process] [--rounds 2]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/warden_bench_evaluate``; that database is dropped and
re-created). Takes about a minute. It:

1. migrates a fresh database and sets up one agent (effective tier 2) with 1 Rego policy,
   4 behavioural rules (rate, cumulative, sequence in shadow, first_seen) and the default
   guardrails (PII redaction, payload size), and an API key;
2. starts real uvicorn workers (``--workers``) serving Warden plus ``POST /bench/bare``
   (bench.urls: authenticates the same key, inserts one row; only mounted by
   ``bench.settings``);
3. drives each endpoint in turn with ``--clients`` concurrent connections (httpx, asyncio;
   one session per connection) for ``--seconds``, after a warm-up, ``--rounds`` times;
4. prints proposals/s, p50 / p90 / p99 latency for both, the ratio, and the database
   queries one proposal makes (counted in-process on the same database).

Every proposal goes through the whole pipeline and writes its ``action.evaluated`` event;
the rules match the traffic, so each runs its query. Targets (issue 4): governed ≥ 40 % of
bare, p99 ≤ 50 ms at 32 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench_evaluate"
VAR_DIR = ROOT / "var" / "bench-evaluate"
POLICY = """package warden.bench_spend

import rego.v1

default verdict := "allow"

verdict := "block" if {
    is_number(input.action.amount)
    input.action.amount > 1000000
}

verdict := "require_approval" if {
    input.action.name == "payment.release"
    is_number(input.action.amount)
    input.action.amount > 10000
}

reason := "over the spend limit" if verdict == "block"
"""


def env_for(url: str, integrator: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL",)},
        "DATABASE_URL": url,
        "WARDEN_VAR_DIR": str(VAR_DIR),
        "WARDEN_INTEGRATOR": integrator,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "PYTHONPATH": str(ROOT),
    }


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
        env=env_for(url, "inline"),
        check=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare_row (id bigserial PRIMARY KEY, agent_id uuid, "
            "created_at timestamptz, body text)"
        )


def setup_agent(url: str) -> dict:
    """Agent, policy, rules, key (in this process, through Warden's services)."""
    os.environ.update(env_for(url, "inline"))
    import django

    django.setup()
    from decimal import Decimal

    from django.contrib.auth import get_user_model

    from console import services
    from console.authorize import services as authz
    from console.models import Agent

    admin = get_user_model().objects.create_superuser("bench-admin", password="bench-admin-pw")
    agent = services.register_agent(
        name="bench-agent",
        by=admin,
        scope={"allowed_actions": ["invoice.*", "contract.*"], "allowed_targets": ["vendor:*"]},
    )
    Agent.objects.filter(pk=agent.pk).update(
        risk_tier=2, risk_percent=Decimal("40"), risk_profile_score=Decimal("60"), effective_tier=2
    )
    authz.create_policy(by=admin, name="spend-limit", module=POLICY)
    authz.create_rule(
        by=admin,
        name="invoice-rate",
        kind="rate",
        pattern="invoice.*",
        window_seconds=3600,
        threshold=10**9,
        verdict="halt",
        severity="critical",
    )
    authz.create_rule(
        by=admin,
        name="invoice-total",
        kind="cumulative",
        pattern="invoice.*",
        window_seconds=72 * 3600,
        threshold="1000000000000",
        verdict="require_approval",
    )
    authz.create_rule(
        by=admin,
        name="read-then-flag",
        kind="sequence",
        pattern="invoice.read",
        then_pattern="invoice.flag",
        window_seconds=60,
        verdict="block",
        mode="shadow",
    )
    # The vendors the traffic uses are known (ALLOWed before), as in a running deployment.
    agent = Agent.objects.get(pk=agent.pk)
    seed = services.open_session(agent, goal="history")
    for n in range(4):
        authz.evaluate_action(agent, seed, name="invoice.read", target=proposal_body(n)["target"])
    services.end_session(seed)
    authz.create_rule(
        by=admin,
        name="new-vendor",
        kind="first_seen",
        pattern="invoice.*",
        verdict="require_approval",
    )
    _, key = services.issue_key(agent, by=admin)
    return {"agent": agent, "key": key}


def count_queries(agent) -> tuple[int, list[str]]:
    """Queries of one governed proposal, counted in-process (after a warm-up proposal)."""
    from decimal import Decimal

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from console import services
    from console.authorize import services as authz
    from console.authorize.runtime import request_sha256
    from console.models import Agent

    agent = Agent.objects.get(pk=agent.pk)
    session = services.open_session(agent)
    body = proposal_body(0)
    fields = dict(body, amount=Decimal(body["amount"]))

    def one(key: str) -> None:
        authz.evaluate_action(
            agent,
            session,
            idempotency_key=key,
            request_digest=request_sha256(session.id, body),
            **fields,
        )

    one(str(uuid.uuid4()))
    with CaptureQueriesContext(connection) as captured:
        one(str(uuid.uuid4()))
    services.end_session(session)
    return len(captured), [q["sql"][:90] for q in captured.captured_queries]


def proposal_body(n: int) -> dict:
    vendors = ("acme", "globex", "initech", "umbrella")
    return {
        "name": "invoice.read" if n % 2 == 0 else "invoice.flag",
        "target": f"vendor:{vendors[n % len(vendors)]}",
        "args": {
            "invoice": f"INV-{n % 1000}",
            "note": "duplicate line items on page 2",
            "lines": 14,
        },
        "amount": "1250.00",
        "currency": "USD",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(url: str, workers: int, integrator: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "console.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env_for(url, integrator),
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    else:
        stop(process)
        raise RuntimeError("uvicorn did not start")
    # Every worker answering: a connection accepted before a worker has loaded Django is
    # dropped when it fails to start in time.
    import httpx

    answered = 0
    while answered < 4 * workers and time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/healthz", timeout=5).raise_for_status()
            answered += 1
        except httpx.HTTPError:
            answered = 0
            time.sleep(0.2)
    return process, base


def start_integrator(url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_integrator"],
        cwd=ROOT,
        env=env_for(url, "process"),
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class CpuMeter:
    """CPU seconds used by the server's processes and by the database backends serving
    them, so a run can be read per request whatever else the machine is doing."""

    def __init__(self, server: subprocess.Popen, url: str) -> None:
        import psutil

        self.psutil = psutil
        self.server = psutil.Process(server.pid)
        self.url = url

    def _backends(self) -> list[int]:
        import psycopg

        name = self.url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            ).fetchall()
        return [row[0] for row in rows]

    def sample(self) -> dict[str, dict[int, float]]:
        def cpu(process) -> float:
            times = process.cpu_times()
            return times.user + times.system

        server = {}
        for process in [self.server, *self.server.children(recursive=True)]:
            try:
                server[process.pid] = cpu(process)
            except self.psutil.Error:
                pass
        database = {}
        for pid in self._backends():
            try:
                database[pid] = cpu(self.psutil.Process(pid))
            except self.psutil.Error:
                pass
        return {"server": server, "database": database}

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        return {
            part: sum(after[part][pid] - before[part].get(pid, 0.0) for pid in after[part])
            for part in ("server", "database")
        }


async def drive(
    base: str,
    key: str,
    path_of,
    clients: int,
    seconds: float,
    warmup: float,
    meter=None,
    rate: float = 0.0,
) -> dict:
    """Drive one endpoint; ``rate`` > 0 paces the clients to that many requests per second
    in total (open loop: latency without queueing behind our own load), else each client
    sends its next request as soon as the last one is answered (closed loop: saturation)."""
    import httpx

    # One connection per client, as each agent process has its own: a shared pool would
    # send a paced load over the few connections that happen to be idle, all served by
    # one or two of the server's workers.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {key}"}
    async with contextlib.AsyncExitStack() as stack:
        https = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30)
            )
            for _ in range(clients)
        ]
        sessions = []
        for http in https:
            response = await http.post("/api/v1/sessions", json={"goal": "bench"})
            response.raise_for_status()
            sessions.append(response.json()["session_id"])
        latencies: list[float] = []
        errors: dict[str, int] = {}
        verdicts: dict[str, int] = {}
        start = time.monotonic()
        measure_from = start + warmup
        stop_at = measure_from + seconds

        interval = clients / rate if rate > 0 else 0.0

        async def client(index: int) -> None:
            n = index
            next_at = start + (interval * index / clients)
            while True:
                now = time.monotonic()
                if now >= stop_at:
                    return
                if interval:
                    if next_at > now:
                        await asyncio.sleep(next_at - now)
                    next_at += interval
                body = proposal_body(n)
                n += clients
                began = time.monotonic()
                response = await https[index].post(
                    path_of(sessions[index]),
                    json=body,
                    headers={"Idempotency-Key": str(uuid.uuid4())},
                )
                ended = time.monotonic()
                if began < measure_from:
                    continue
                if response.status_code != 200:
                    label = f"{response.status_code}"
                    errors[label] = errors.get(label, 0) + 1
                    continue
                latencies.append(ended - began)
                verdict = response.json().get("verdict", "ok")
                verdicts[verdict] = verdicts.get(verdict, 0) + 1

        samples = {}

        async def sampler() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
            samples["before"] = await asyncio.to_thread(meter.sample)
            await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
            samples["after"] = await asyncio.to_thread(meter.sample)

        tasks = [client(i) for i in range(clients)]
        if meter is not None:
            tasks.append(sampler())
        await asyncio.gather(*tasks)
        for http, session_id in zip(https, sessions, strict=True):
            await http.post(f"/api/v1/sessions/{session_id}/end")
    latencies.sort()
    count = len(latencies)

    def pct(p: float) -> float:
        return latencies[min(count - 1, int(p * count))] * 1000 if count else float("nan")

    cpu = CpuMeter.used(samples["before"], samples["after"]) if samples else {}
    return {
        "count": count,
        "server_cpu_ms": 1000 * cpu.get("server", 0.0) / count if count else float("nan"),
        "db_cpu_ms": 1000 * cpu.get("database", 0.0) / count if count else float("nan"),
        "rate": count / seconds,
        "p50": pct(0.50),
        "p90": pct(0.90),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000 if count else float("nan"),
        "mean": statistics.fmean(latencies) * 1000 if count else float("nan"),
        "errors": errors,
        "verdicts": verdicts,
    }


def row(label: str, result: dict) -> str:
    return (
        f"{label:<14} {result['count']:>8} {result['rate']:>8.1f} {result['p50']:>7.1f} "
        f"{result['p90']:>7.1f} {result['p99']:>7.1f} {result['max']:>7.1f} "
        f"{result['server_cpu_ms']:>10.2f} {result['db_cpu_ms']:>9.2f}   "
        f"{result['errors'] or ''}{'' if not result['verdicts'] else result['verdicts']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="governed proposals vs a bare endpoint")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--clients", type=int, default=32)
    # One more worker than this machine's two cores: an agent's proposals are decided one
    # after the other, and with two processes the one holding the agent's lock waited for
    # its process's GIL behind requests still being parsed (bench/README: 2, 3, 4 measured).
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--integrator", choices=("thread", "inline", "process"), default="thread")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the queries")
    parser.add_argument(
        "--paced-share",
        type=float,
        default=0.5,
        help="paced run: offered load as a share of the governed saturation rate (0: skip)",
    )
    options = parser.parse_args(argv)
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    VAR_DIR.mkdir(parents=True, exist_ok=True)

    print(
        f"database {url.rsplit('@', 1)[-1]}, {options.workers} uvicorn worker(s), "
        f"{options.clients} clients, {options.seconds:g} s per run, integrator {options.integrator}"
    )
    recreate_database(url)
    setup = setup_agent(url)
    queries, statements = count_queries(setup["agent"])
    from django.db import connection, connections

    # Table statistics, as autovacuum keeps them in a deployment. This machine's PostgreSQL
    # runs with autovacuum off: without statistics the planner reads an agent's history
    # edges through any index that starts with the agent, and the cost grows with the run.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()
    print(f"queries per governed proposal: {queries} (bare endpoint: 3 incl. BEGIN/COMMIT)")

    # This process loaded Django to set the agent up: a full pass of its collector would
    # walk all of it, pausing the clients' event loop for 50-300 ms measured here (and
    # adding that to the latency of every request in flight). Freeze what exists now.
    gc.collect()
    gc.freeze()
    server, base = start_server(url, options.workers, options.integrator)
    integrator = start_integrator(url) if options.integrator == "process" else None
    meter = CpuMeter(server, url)
    results: dict[str, list[dict]] = {"bare": [], "governed": []}
    try:
        paths = {
            "bare": lambda session_id: "/bench/bare",
            "governed": lambda session_id: f"/api/v1/sessions/{session_id}/actions",
        }
        for round_number in range(options.rounds):
            for kind in ("bare", "governed"):
                result = asyncio.run(
                    drive(
                        base,
                        setup["key"],
                        paths[kind],
                        options.clients,
                        options.seconds,
                        options.warmup,
                        meter,
                    )
                )
                results[kind].append(result)
                print(
                    f"  round {round_number + 1} {kind:<9} {result['rate']:8.1f}/s  p99 {result['p99']:6.1f} ms"
                )
        governed_rate = statistics.fmean(r["rate"] for r in results["governed"])
        paced_rate = governed_rate * options.paced_share
        if paced_rate > 0:
            for kind in ("bare", "governed"):
                result = asyncio.run(
                    drive(
                        base,
                        setup["key"],
                        paths[kind],
                        options.clients,
                        options.seconds,
                        options.warmup,
                        meter,
                        rate=paced_rate,
                    )
                )
                results[f"{kind} paced"] = [result]
                print(f"  paced   {kind:<9} {result['rate']:8.1f}/s  p99 {result['p99']:6.1f} ms")
    finally:
        stop(server)
        if integrator is not None:
            stop(integrator)

    print()
    print(
        f"{'':<14} {'requests':>8} {'per s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} "
        f"{'max ms':>7} {'cpu ms/req':>10} {'db ms/req':>9}"
    )
    for kind in ("bare", "governed"):
        for index, result in enumerate(results[kind]):
            print(row(f"{kind} #{index + 1}", result))
    for kind in ("bare paced", "governed paced"):
        for result in results.get(kind, []):
            print(row(kind, result))
    bare = statistics.fmean(r["rate"] for r in results["bare"])
    governed = statistics.fmean(r["rate"] for r in results["governed"])
    p99 = max(r["p99"] for r in results["governed"])
    ratio = governed / bare if bare else float("nan")
    print()
    print(f"governed / bare throughput: {ratio:.0%}   (target ≥ 40%)")
    print(f"governed p99 at saturation (worst round): {p99:.1f} ms")
    if "governed paced" in results:
        paced = results["governed paced"][0]
        print(
            f"governed p99 at {paced['rate']:.0f}/s offered over {options.clients} connections: "
            f"{paced['p99']:.1f} ms   (target ≤ 50 ms at 32 clients)"
        )
    for kind in ("bare", "governed"):
        server_cpu = statistics.fmean(r["server_cpu_ms"] for r in results[kind])
        db_cpu = statistics.fmean(r["db_cpu_ms"] for r in results[kind])
        print(f"{kind:<9} CPU per request: server {server_cpu:.2f} ms, database {db_cpu:.2f} ms")
    print(f"queries per governed proposal: {queries}")
    if options.verbose:
        for statement in statements:
            print("   ", statement)
    return 0


if __name__ == "__main__":
    sys.exit(main())
