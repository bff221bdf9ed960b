"""Approval latency on the production stack (issue 5, SPEC §4 "live queue", "agent side").

    .venv/bin/python bench/approval_latency.py [--rounds 200] [--port 8765]

Needs PostgreSQL and Redis: ``BENCH_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/warden_bench_approvals``; the database is dropped and
re-created) and ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/8``; each run uses a
channel prefix of its own, nothing is flushed). It starts ``manage.py serve`` (uvicorn,
channels_redis, PostgreSQL) in a subprocess, then measures over ``--rounds`` round trips
each, and prints p50 / p95 / max side by side:

(a) **open → reviewer**: a request needing approval is opened (committed) → a reviewer's
    connected ``/ws/approvals/`` socket receives the hint; against the same reviewer polling
    ``GET /api/v1/approvals?status=pending`` every second;
(b) **decision → agent**: ``POST /api/v1/approvals/{id}/decide`` → the agent's
    ``GET /api/v1/approvals/{id}?wait=30`` long-poll answers; against the agent polling
    ``GET /api/v1/approvals/{id}`` every second.

Target: p95 ≤ 250 ms for both pushed paths. Takes about a minute and a half.

The "open" step is one function, ``open_request`` below: today it makes the authorization
pipeline's own calls (``action.evaluated`` + ``approvals.services.open_request`` in one
transaction); once the proposal endpoint exists, make it ``POST
/api/v1/sessions/{id}/actions`` with the agent key and return the answer's ``approval_id``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/warden_bench_approvals"
DEFAULT_REDIS = "redis://127.0.0.1:6379/8"
TARGET_P95_MS = 250.0
POLL_INTERVAL = 1.0


# --- setup -----------------------------------------------------------------------------
def environment(db_url: str, redis_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
        "WARDEN_VAR_DIR": str(ROOT / "var" / "bench"),
        "WARDEN_CHANNEL_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
        "DJANGO_SETTINGS_MODULE": "console.settings",
    }


def recreate_database(db_url: str, env: dict[str, str]) -> None:
    import psycopg

    name = db_url.rsplit("/", 1)[1]
    admin = db_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def make_fixtures() -> dict:
    """An owner, a reviewer with an API token and a session cookie, an agent with a key
    and an open session."""
    from django.conf import settings
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore

    from console import services
    from console.models import Agent

    User = get_user_model()
    owner = User.objects.create_user("bench-owner", password="bench-owner-pw")
    owner.groups.add(Group.objects.get_or_create(name="admin")[0])
    reviewer = User.objects.create_user("bench-reviewer", password="bench-reviewer-pw")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    _, token = services.issue_operator_token(reviewer, by="system:bench")
    agent = services.register_agent(name="bench-procurement", by=owner)
    Agent.objects.filter(pk=agent.pk).update(
        risk_tier=2, risk_percent=40, risk_profile_score=60, effective_tier=2
    )
    agent.refresh_from_db()
    _, key = services.issue_key(agent, by=owner)
    session = services.open_session(agent, goal="approval latency bench")
    store = SessionStore()
    store[SESSION_KEY] = str(reviewer.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = reviewer.get_session_auth_hash()
    store.create()
    return {
        "agent": agent,
        "session": session,
        "agent_key": key,
        "reviewer": reviewer,
        "reviewer_token": token,
        "cookie": f"{settings.SESSION_COOKIE_NAME}={store.session_key}",
    }


def open_request(ctx: dict, index: int) -> str:
    """Open one request needing approval, committed; its id.

    Switch to a real proposal once the endpoint exists:
    ``POST /api/v1/sessions/{session}/actions`` (agent key) → ``answer["approval_id"]``.
    """
    from django.db import transaction

    from approvals.services import open_request as open_approval
    from audit import canonical
    from audit.services import record

    agent, session = ctx["agent"], ctx["session"]
    args = {"vendor": f"vendor:{index}", "amount": "120000.00"}
    digest = hashlib.sha256(canonical.dumps(args)).hexdigest()
    action_id = uuid.uuid4()
    with transaction.atomic():
        approval = open_approval(
            agent=agent,
            session=session,
            action_id=action_id,
            action_name="contract.commit",
            target=f"vendor:{index}",
            args_sha256=digest,
            amount="120000.00",
            currency="USD",
            reason="bench: contract.commit needs approval",
            source="rule:bench",
            severity="major",
            effective_tier=2,
            args=args,
        )
        record(
            "action.evaluated",
            actor=agent.actor,
            agent_id=agent.id,
            session_id=session.id,
            run_id=session.run_id,
            verdict="REQUIRE_APPROVAL",
            result="pending",
            reason="bench: contract.commit needs approval",
            payload={
                "action_id": action_id,
                "source": "rule:bench",
                "action": {"name": "contract.commit", "target": f"vendor:{index}", "args": args},
                "approval_id": approval.id,
                "effective_tier": 2,
            },
        )
    return str(approval.id)


def clear_queue(ctx: dict) -> None:
    from django.db import transaction

    from approvals.services import cancel_open_requests_for_agent

    with transaction.atomic():
        cancel_open_requests_for_agent(ctx["agent"], by="system:bench", reason="bench phase over")


# --- the server ------------------------------------------------------------------------
def start_server(port: int, env: dict[str, str]) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--no-scheduler"],
        cwd=ROOT,
        env=env,
    )
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.terminate()
    raise SystemExit("the server did not start")


# --- measurements ----------------------------------------------------------------------
async def open_to_hint_push(ctx, base: str, rounds: int) -> list[float]:
    from websockets.asyncio.client import connect

    arrived: dict[str, float] = {}
    ws_url = base.replace("http://", "ws://") + "/ws/approvals/"
    async with connect(ws_url, origin=base, additional_headers={"Cookie": ctx["cookie"]}) as ws:

        async def read():
            async for raw in ws:
                message = json.loads(raw)
                if message.get("kind") == "requested" and message.get("approval_id"):
                    arrived.setdefault(message["approval_id"], time.perf_counter())

        reader = asyncio.create_task(read())
        latencies = []
        for index in range(rounds):
            started = time.perf_counter()
            approval_id = await asyncio.to_thread(open_request, ctx, index)
            deadline = time.monotonic() + 10
            while approval_id not in arrived and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
            if approval_id in arrived:
                latencies.append(arrived[approval_id] - started)
        reader.cancel()
    return latencies


async def open_to_hint_polling(ctx, base: str, rounds: int) -> list[float]:
    import httpx

    seen: dict[str, float] = {}
    opened: dict[str, float] = {}
    done = asyncio.Event()
    headers = {"Authorization": f"Token {ctx['reviewer_token']}"}
    params = {"status": "pending", "agent": str(ctx["agent"].id), "limit": 500}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as client:

        async def poll():
            while not done.is_set():
                tick = time.perf_counter()
                rows = (await client.get("/api/v1/approvals", params=params)).json()["results"]
                now = time.perf_counter()
                for row in rows:
                    seen.setdefault(row["id"], now)
                await asyncio.sleep(max(0.0, POLL_INTERVAL - (time.perf_counter() - tick)))

        poller = asyncio.create_task(poll())
        for index in range(rounds):
            started = time.perf_counter()
            opened[await asyncio.to_thread(open_request, ctx, 10_000 + index)] = started
            await asyncio.sleep(random.uniform(0.02, 0.08))
        deadline = time.monotonic() + 5
        while set(opened) - set(seen) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done.set()
        await poller
    return [seen[i] - t for i, t in opened.items() if i in seen]


async def decide(client, ctx, approval_id: str) -> None:
    response = await client.post(
        f"/api/v1/approvals/{approval_id}/decide",
        json={"decision": "approve", "comment": "bench"},
        headers={"Authorization": f"Token {ctx['reviewer_token']}"},
    )
    response.raise_for_status()


async def decision_to_agent_push(ctx, base: str, rounds: int) -> list[float]:
    import httpx

    agent_headers = {"Authorization": f"Bearer {ctx['agent_key']}"}
    latencies = []
    async with httpx.AsyncClient(base_url=base, timeout=40) as client:
        for index in range(rounds):
            approval_id = await asyncio.to_thread(open_request, ctx, 20_000 + index)
            answered: dict = {}

            async def wait_for_answer(approval_id=approval_id, answered=answered):
                response = await client.get(
                    f"/api/v1/approvals/{approval_id}", params={"wait": 30}, headers=agent_headers
                )
                answered["at"] = time.perf_counter()
                answered["status"] = response.json()["status"]

            waiter = asyncio.create_task(wait_for_answer())
            await asyncio.sleep(0.05)  # the long-poll reaches the server and subscribes
            started = time.perf_counter()
            await decide(client, ctx, approval_id)
            await waiter
            if answered["status"] == "approved":
                latencies.append(answered["at"] - started)
    return latencies


async def decision_to_agent_polling(ctx, base: str, rounds: int, batch: int = 20) -> list[float]:
    import httpx

    agent_headers = {"Authorization": f"Bearer {ctx['agent_key']}"}
    latencies: list[float] = []
    async with httpx.AsyncClient(
        base_url=base, timeout=10, limits=httpx.Limits(max_connections=batch + 5)
    ) as client:
        for first in range(0, rounds, batch):
            ids = [
                await asyncio.to_thread(open_request, ctx, 30_000 + first + i)
                for i in range(min(batch, rounds - first))
            ]
            decided_at: dict[str, float] = {}

            async def poll(approval_id):
                await asyncio.sleep(random.uniform(0, POLL_INTERVAL))  # agents start anywhere
                while True:
                    tick = time.perf_counter()
                    body = (
                        await client.get(f"/api/v1/approvals/{approval_id}", headers=agent_headers)
                    ).json()
                    if body["status"] != "pending":
                        return approval_id, time.perf_counter()
                    await asyncio.sleep(max(0.0, POLL_INTERVAL - (time.perf_counter() - tick)))

            pollers = [asyncio.create_task(poll(i)) for i in ids]
            await asyncio.sleep(1.2)
            for approval_id in ids:
                decided_at[approval_id] = time.perf_counter()
                await decide(client, ctx, approval_id)
                await asyncio.sleep(0.05)
            for approval_id, at in await asyncio.gather(*pollers):
                latencies.append(at - decided_at[approval_id])
    return latencies


# --- report ----------------------------------------------------------------------------
def summary(latencies: list[float]) -> tuple[int, float, float, float]:
    ms = sorted(1000 * x for x in latencies)
    if not ms:
        return 0, float("nan"), float("nan"), float("nan")
    p95 = ms[min(len(ms) - 1, int(round(0.95 * len(ms))) - 1)]
    return len(ms), statistics.median(ms), p95, ms[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--port", type=int, default=8765)
    options = parser.parse_args()
    db_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB)
    redis_url = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS)
    env = environment(db_url, redis_url)
    print(f"database {db_url}, redis {redis_url}, {options.rounds} round trips per path")
    recreate_database(db_url, env)
    setup_django(env)
    ctx = make_fixtures()
    server = start_server(options.port, env)
    base = f"http://127.0.0.1:{options.port}"
    try:
        rows = []
        for label, measure in [
            ("(a) open → reviewer, websocket hint", open_to_hint_push),
            ("(a) open → reviewer, 1 s polling", open_to_hint_polling),
            ("(b) decision → agent, long-poll", decision_to_agent_push),
            ("(b) decision → agent, 1 s polling", decision_to_agent_polling),
        ]:
            started = time.monotonic()
            latencies = asyncio.run(measure(ctx, base, options.rounds))
            clear_queue(ctx)
            rows.append((label, *summary(latencies)))
            print(f"  measured {label} in {time.monotonic() - started:.1f} s", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    print()
    print(f"{'path':40} {'n':>5} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}  target")
    for label, n, p50, p95, worst in rows:
        pushed = "polling" not in label
        verdict = ("ok" if p95 <= TARGET_P95_MS else "MISSED") if pushed else "—"
        print(f"{label:40} {n:>5} {p50:>9.1f} {p95:>9.1f} {worst:>9.1f}  {verdict}")
    print(
        f"\ntarget: p95 ≤ {TARGET_P95_MS:.0f} ms for the pushed paths; figures are from one run "
        "on one machine (a shared, loaded machine inflates them)."
    )


if __name__ == "__main__":
    main()
