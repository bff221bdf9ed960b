"""Event-log append throughput and verification speed (issue: foundation, DESIGN.md
"The one serial point").

    .venv/bin/python bench/event_append.py [--seconds 10] [--writers 32]

Needs PostgreSQL (``BENCH_DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/warden_bench``; the database is dropped and re-created).
Takes about a minute. Prints, from one run on one machine:

* ``bare insert``: 32 concurrent writers each committing one INSERT of a row the size of an
  event (same table shape, no log work) — the database's concurrent commit rate, the floor;
* ``bare ORM``: the same through Django's ORM (``Model.objects.create`` in ``atomic``);
* ``writer (inline)``: 32 writers calling ``audit.services.record()`` in a transaction each;
  the committing processes integrate the log after commit (WARDEN_INTEGRATOR=inline);
* ``writer (thread)``: the same with a background integrator thread in each writing
  process (WARDEN_INTEGRATOR=thread, the PostgreSQL default);
* ``writer (process)``: the same with a dedicated ``run_integrator`` process;
* ratios against the bare rates, how many events were *integrated* (numbered, hashed,
  signed) in the window and the backlog left at the end;
* ``verify_log`` throughput over everything appended (every signature checked), beside the
  machine's ceiling measured in the same run: bare Ed25519 verifications per second on
  every core, with the library ``verify_log`` uses, and no other work.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/warden_bench"
PAYLOAD = {
    "action_id": "6c2f1d2e-2b1b-4f4f-9a55-5a8d2c1e0f11",
    "source": "rule:contract-burst",
    "action": {
        "name": "contract.commit",
        "target": "vendor:acme",
        "amount": "120000.00",
        "args": {"po": "PO-1"},
    },
    "layers": [
        {"layer": "scope", "verdict": "ALLOW"},
        {"layer": "rules", "verdict": "REQUIRE_APPROVAL"},
    ],
}


def setup_django(url: str, integrator: str = "inline") -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["WARDEN_INTEGRATOR"] = integrator
    # Each writer thread keeps its own connection for the whole phase (as before the
    # connection pool existed), so a background integrator thread is never starved of one.
    os.environ["WARDEN_DB_POOL_SIZE"] = "0"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    os.environ.setdefault("WARDEN_VAR_DIR", str(ROOT / "var" / "bench"))
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
        env={**os.environ, "DATABASE_URL": url, "WARDEN_VAR_DIR": str(ROOT / "var" / "bench")},
        check=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare (id bigserial primary key, uid uuid, ts timestamptz, event_type text,"
            " agent_id uuid, session_id uuid, actor text, verdict text, result text, reason text, payload text)"
        )


# --- workers ---------------------------------------------------------------------------
def _worker(
    kind: str, url: str, integrator: str, threads: int, seconds: float, start_at: float, out
) -> None:
    setup_django(url, integrator)
    import uuid

    from django.db import connection, transaction
    from django.utils import timezone

    from audit import canonical
    from audit.services import record

    payload_text = canonical.dumps(PAYLOAD).decode()
    counts = [0] * threads
    agent = uuid.uuid4()

    def loop(index: int) -> None:
        n = 0
        while time.time() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        try:
            while time.time() < deadline:
                if kind == "writer":
                    with transaction.atomic():
                        record(
                            "action.evaluated",
                            actor=f"agent:{agent}",
                            agent_id=agent,
                            verdict="REQUIRE_APPROVAL",
                            result="pending",
                            reason="contract commits over the 72 h threshold",
                            payload=PAYLOAD,
                        )
                elif kind == "bare":
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute(
                            "INSERT INTO bench_bare (uid, ts, event_type, agent_id, session_id, actor, verdict,"
                            " result, reason, payload) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                            [
                                uuid.uuid4(),
                                timezone.now(),
                                "action.evaluated",
                                agent,
                                None,
                                f"agent:{agent}",
                                "REQUIRE_APPROVAL",
                                "pending",
                                "contract commits over the 72 h threshold",
                                payload_text,
                            ],
                        )
                elif kind == "orm":
                    from audit.models import GovernanceEvent

                    # The same content row through the ORM, without the log work
                    # (no pending marker: the integrator never sees these rows).
                    with transaction.atomic():
                        GovernanceEvent.objects.create(
                            timestamp=timezone.now(),
                            event_type="action.evaluated",
                            agent_id=agent,
                            actor=f"agent:{agent}",
                            verdict="REQUIRE_APPROVAL",
                            result="pending",
                            reason="contract commits over the 72 h threshold",
                            payload_json=payload_text,
                        )
                n += 1
        finally:
            counts[index] = n
            connection.close()

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    out.put(sum(counts))


def run_phase(kind: str, url: str, writers: int, seconds: float, integrator: str = "inline") -> int:
    processes = min(2, writers)  # one per core; threads give the concurrency
    per = [writers // processes + (1 if i < writers % processes else 0) for i in range(processes)]
    queue: mp.Queue = mp.Queue()
    start_at = time.time() + 3.0  # let every process finish django.setup()
    procs = [
        mp.Process(target=_worker, args=(kind, url, integrator, n, seconds, start_at, queue))
        for n in per
    ]
    for proc in procs:
        proc.start()
    total = sum(queue.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total


def log_state(url: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT coalesce(max(seq), 0) FROM audit_eventlogentry").fetchone()[0]
        pending = conn.execute("SELECT count(*) FROM audit_pendingevent").fetchone()[0]
    return size, pending


def _top_up(url: str, count: int) -> None:
    """Append ``count`` events quickly (1,000 per transaction) for the verification figure."""
    setup_django(url, "inline")
    import uuid

    from django.db import transaction

    from audit.services import record

    agent = uuid.uuid4()
    for start in range(0, count, 1000):
        with transaction.atomic():
            for _ in range(min(1000, count - start)):
                record(
                    "action.evaluated",
                    actor=f"agent:{agent}",
                    agent_id=agent,
                    verdict="ALLOW",
                    payload=PAYLOAD,
                )


def measure_appends(url: str, writers: int, seconds: float) -> dict[str, tuple[float, float, int]]:
    """One round of every phase: {name: (rows/s, integrated/s, backlog at end)}."""
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "WARDEN_INTEGRATOR": "process",
        "WARDEN_VAR_DIR": str(ROOT / "var" / "bench"),
    }
    out = {}
    out["bare INSERT, raw SQL"] = (run_phase("bare", url, writers, seconds) / seconds, 0.0, 0)
    out["bare INSERT, ORM, same row"] = (run_phase("orm", url, writers, seconds) / seconds, 0.0, 0)
    before, _ = log_state(url)
    rate = run_phase("writer", url, writers, seconds, integrator="inline") / seconds
    after, pending = log_state(url)
    out["record(), integrated after commit"] = (rate, (after - before) / seconds, pending)
    time.sleep(3)  # let the backlog drain
    before, _ = log_state(url)
    rate = run_phase("writer", url, writers, seconds, integrator="thread") / seconds
    after, pending = log_state(url)
    out["record(), background thread"] = (rate, (after - before) / seconds, pending)
    integrator = subprocess.Popen(
        [sys.executable, "manage.py", "run_integrator"], cwd=ROOT, env=env
    )
    time.sleep(2)
    before, _ = log_state(url)
    rate = run_phase("writer", url, writers, seconds, integrator="process") / seconds
    after, pending = log_state(url)
    out["record(), run_integrator process"] = (rate, (after - before) / seconds, pending)
    time.sleep(3)
    integrator.terminate()
    integrator.wait(timeout=10)
    return out


def _verify_signatures(count: int, ready, spans) -> None:
    """Child process: sign ``count`` 32-byte messages, wait for the others, then verify
    them and report when verifying started and ended (the monotonic clock is system-wide)."""
    from nacl.bindings import crypto_sign, crypto_sign_keypair, crypto_sign_open

    public, secret = crypto_sign_keypair()
    signed = [crypto_sign(os.urandom(32), secret) for _ in range(count)]
    ready.wait()
    started = time.monotonic()
    for message in signed:
        crypto_sign_open(message, public)
    spans.put((started, time.monotonic()))


def bare_verification_rate(count: int = 40_000) -> float:
    """Ed25519 verifications per second with one process per core, nothing else done."""
    cores = os.cpu_count() or 1
    share = count // cores
    context = mp.get_context("fork")
    ready, spans = context.Barrier(cores), context.Queue()
    procs = [
        context.Process(target=_verify_signatures, args=(share, ready, spans)) for _ in range(cores)
    ]
    for proc in procs:
        proc.start()
    times = [spans.get() for _ in procs]
    for proc in procs:
        proc.join()
    elapsed = max(end for _, end in times) - min(start for start, _ in times)
    return share * cores / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds per phase")
    parser.add_argument("--verify-events", type=int, default=100_000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    mp.set_start_method("fork")
    print(
        f"event-log append benchmark: {args.writers} concurrent writers, {args.seconds:.0f} s per phase, "
        f"best of {args.rounds} rounds, {url}"
    )
    recreate_database(url)
    env = {**os.environ, "DATABASE_URL": url, "WARDEN_VAR_DIR": str(ROOT / "var" / "bench")}
    # First start generates the signing key, outside the timed phases.
    subprocess.run(
        [sys.executable, "manage.py", "checkpoint"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
    )

    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(args.rounds):
        for name, figures in measure_appends(url, args.writers, args.seconds).items():
            if name not in best or figures[0] > best[name][0]:
                best[name] = figures
    raw = best["bare INSERT, raw SQL"][0]
    orm = best["bare INSERT, ORM, same row"][0]
    print()
    print(f"{'phase':36} {'rows/s':>9} {'vs raw':>7} {'vs ORM':>7}  log integration")
    for name, (rate, integrated, backlog) in best.items():
        extra = (
            f"  {integrated:,.0f} events/s signed, {backlog} waiting at the end"
            if name.startswith("record")
            else ""
        )
        print(f"{name:36} {rate:9,.0f} {rate / raw:7.0%} {rate / orm:7.0%}{extra}")

    size, _ = log_state(url)
    if size < args.verify_events:
        workers = [
            mp.Process(target=_top_up, args=(url, (args.verify_events - size) // 2))
            for _ in range(2)
        ]
        for proc in workers:
            proc.start()
        for proc in workers:
            proc.join()
    subprocess.run(
        [sys.executable, "manage.py", "checkpoint"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=env,
    )
    size, _ = log_state(url)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_log"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    print()
    print(
        "verify_log: "
        + (result.stdout.strip().splitlines()[0] if result.stdout else result.stderr.strip())
    )
    print(
        f"verify_log including start-up: {size / elapsed:,.0f} events/s over {size:,} events "
        f"({'verifies' if result.returncode == 0 else 'FAILED'})"
    )
    ceiling = bare_verification_rate()
    print(
        f"bare Ed25519 verification on {os.cpu_count()} cores (libsodium, nothing else): "
        f"{ceiling:,.0f}/s; verify_log including start-up is {size / elapsed / ceiling:.0%} "
        "of it (target 50,000 events/s)"
    )


if __name__ == "__main__":
    main()
