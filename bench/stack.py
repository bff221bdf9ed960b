"""A private production stack on loopback: PostgreSQL, Redis, Warden's server and workers.

Used by the fault and load tests (``tests/faults/``, ``tests/load/``) and by
``bench/soak.py``. Nothing here touches the machine's shared PostgreSQL or Redis: each
stack starts its own ``postgres`` (``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin``,
run as the ``postgres`` user when we are root) and its own ``redis-server`` on free ports,
in a temporary directory, so a test may stop, kill and restart them at will.

    stack = Stack(tmp_dir)
    stack.start()                      # postgres + redis, fresh database, migrated
    seed = stack.seed(agents=20)       # admin, reviewer session, agents with keys
    stack.serve(workers=2)             # manage.py serve (uvicorn) subprocess
    stack.worker(queues="default,trust,exports")  # a Celery worker subprocess
    ...
    stack.verify_log()                 # manage.py verify_log: (ok, output)
    stack.stop()

``python bench/stack.py seed --agents N`` is the seeding step itself (run by ``seed()`` in a
subprocess with the stack's environment; prints JSON).

:class:`Traffic` drives agents through the runtime API (asyncio + httpx): each simulated
agent opens a session and proposes actions one after the other; an answer that is not a
200 (or no answer) is retried with the same ``Idempotency-Key`` until it is, so each
proposal is accepted exactly once whatever fails in between: afterwards the number of
accepted proposals must equal the number of ``action.evaluated`` events.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

POLICY = """package warden.stack_spend

import rego.v1

default verdict := "allow"

verdict := "require_approval" if {
    input.action.name == "payment.release"
    is_number(input.action.amount)
    input.action.amount > 10000
}

reason := "payment above 10,000 needs a reviewer" if verdict == "require_approval"
"""


class Unavailable(RuntimeError):
    """A binary the stack needs is not installed (tests skip with this reason)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.args[:4]} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def stop_process(process: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout=15) -> None:
    """Stop a process we started (its own process group: uvicorn and Celery have children)."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


# --- PostgreSQL -----------------------------------------------------------------------
def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).parent
    raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")


class PrivatePostgres:
    """A PostgreSQL cluster of our own in ``directory`` on a free loopback port."""

    def __init__(self, directory: Path, port: int | None = None, *, fsync: bool = True) -> None:
        self.bin = postgres_bin()
        self.directory = Path(directory)
        self._own_directory = False
        self.port = port or free_port()
        self.fsync = fsync
        self._as = []
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError as exc:
                raise Unavailable("running as root and there is no postgres user") from exc
            self._as = ["runuser", "-u", "postgres", "--"]
            # The postgres user must reach its data directory: a directory of its own
            # (a test's tmp_path sits under a root-only parent).
            self.directory = Path(tempfile.mkdtemp(prefix="warden-pg-"))
            self._own_directory = True
        self.data = self.directory / "data"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self._as, *args], check=check, capture_output=True, text=True, timeout=60
        )

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres")
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def clone(self, template: Path) -> None:
        """Start from a copy of a stopped cluster's data directory (see
        :meth:`Stack.build_template`) instead of ``initdb`` + ``migrate``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.directory, "postgres")
        subprocess.run(["cp", "-a", str(template), str(self.data)], check=True, timeout=120)

    def start(self) -> None:
        if not self.data.exists():
            self.init()
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
            f"-c max_connections=300 -c fsync={'on' if self.fsync else 'off'} "
            "-c shared_buffers=128MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown; ``immediate``: as a crash (recovery from WAL)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        result = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False)
        return result.returncode == 0

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def close(self) -> None:
        if self.data.exists() and self.running():
            self.stop("immediate")
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


# --- Redis ----------------------------------------------------------------------------
class PrivateRedis:
    """``redis-server`` on a free loopback port, nothing persisted: a restart comes back
    empty, as a Redis that lost its memory (the worst case for hints and queued tasks)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise Unavailable("redis-server is not installed")
        self.binary = binary
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port, 15, self.process)

    def stop(self) -> None:
        stop_process(self.process, signal.SIGKILL)
        self.process = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    close = stop


# --- the stack ------------------------------------------------------------------------
class Stack:
    def __init__(self, directory: Path, *, fsync: bool = True, database: str = "warden") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.postgres = PrivatePostgres(self.directory / "pg", fsync=fsync)
        self.redis = PrivateRedis(self.directory / "redis")
        self.database = database
        self.var = self.directory / "var"
        self.processes: dict[str, subprocess.Popen] = {}
        self.server_url = ""
        self.extra_env: dict[str, str] = {}

    # environment shared by every process of the stack
    @property
    def database_url(self) -> str:
        return self.postgres.url(self.database)

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("WARDEN_", "DATABASE_URL", "REDIS_URL", "DJANGO_", "PYTEST"))
        }
        return {
            **base,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url(0),
            "WARDEN_VAR_DIR": str(self.var),
            "WARDEN_KEY_DIR": str(self.var / "keys"),
            "WARDEN_EXPORT_DIR": str(self.var / "exports"),
            "WARDEN_CHANNEL_PREFIX": "stack",
            "DJANGO_SETTINGS_MODULE": "console.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
            **extra,
        }

    def start(self, template: Path | None = None) -> None:
        """Start PostgreSQL and Redis; a fresh, migrated database (copied from
        ``template``, a data directory made by :meth:`build_template`, when given)."""
        if template is not None:
            self.postgres.clone(template)
            self.postgres.start()
        else:
            self.postgres.start()
            self.postgres.create_database(self.database)
        self.redis.start()
        if template is None:
            self.manage("migrate", "--noinput", "-v0")

    def build_template(self) -> Path:
        """A stopped cluster holding the migrated database: stacks started from it skip
        ``initdb`` and ``migrate`` (the tests start one per test)."""
        self.postgres.start()
        self.postgres.create_database(self.database)
        self.manage("migrate", "--noinput", "-v0")
        self.postgres.stop("fast")
        return self.postgres.data

    def manage(self, *args: str, check: bool = True, timeout: float = 300):
        return subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def seed(self, agents: int = 1, events: int = 0) -> dict:
        result = subprocess.run(
            [PYTHON, str(ROOT / "bench" / "stack.py"), "seed", "--agents", str(agents)]
            + (["--events", str(events)] if events else []),
            cwd=ROOT,
            env=self.env(WARDEN_INTEGRATOR="inline"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])

    def _log(self, name: str):
        return open(self.directory / f"{name}.log", "ab")

    def serve(self, workers: int = 1, **env: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-scheduler",
            ],
            cwd=ROOT,
            env=self.env(**env),
            stdout=self._log("server"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes["server"] = process
        wait_port(port, 60, process)
        self.server_url = f"http://127.0.0.1:{port}"
        return self.server_url

    def worker(self, name: str = "worker", queues: str = "default,trust,exports", **env: str):
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "console",
                "worker",
                "-Q",
                queues,
                "--pool",
                "solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{name}@%h",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=self.env(WARDEN_CELERY_EAGER="0", **env),
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes[name] = process
        return process

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        stop_process(self.processes.pop(name, None), sig)

    def log_text(self, name: str) -> str:
        try:
            return (self.directory / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        for name in list(self.processes):
            self.kill(name, signal.SIGTERM)
        self.redis.close()
        self.postgres.close()

    # --- reading the stack's database ---------------------------------------------------
    def sql(self, query: str, params=None) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()

    def wait_integrated(self, timeout: float = 60.0) -> int:
        """Wait until no event waits for its log fields; returns the log size."""
        deadline = time.monotonic() + timeout
        while True:
            pending = self.sql("SELECT count(*) FROM audit_pendingevent")[0][0]
            if pending == 0:
                return self.sql("SELECT count(*) FROM audit_eventlogentry")[0][0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{pending} events still wait for integration")
            time.sleep(0.2)

    def evaluated_action_ids(self) -> list[str]:
        rows = self.sql(
            "SELECT payload_json::jsonb ->> 'action_id' FROM audit_governanceevent "
            "WHERE event_type = 'action.evaluated'"
        )
        return [row[0] for row in rows]

    def verify_log(self) -> tuple[bool, str]:
        result = self.manage("verify_log", check=False)
        return result.returncode == 0, (result.stdout + result.stderr).strip()

    def rss_mb(self) -> dict[str, float]:
        """Memory of each process of the stack, children summed into their parent's figure
        (uvicorn's workers, Celery's pool, PostgreSQL's backends): the proportional set
        size where Linux reports it (shared pages, such as PostgreSQL's shared buffers,
        divided among the processes mapping them), else the resident set."""
        import psutil

        figures: dict[str, float] = {}
        pids = {name: process.pid for name, process in self.processes.items()}
        if self.redis.process is not None:
            pids["redis"] = self.redis.process.pid
        postmaster = self.postgres.postmaster_pid()
        if postmaster:
            pids["postgres"] = postmaster
        for name, pid in pids.items():
            try:
                process = psutil.Process(pid)
                members = [process, *process.children(recursive=True)]
                figures[name] = sum(_pss(m) for m in members) / 2**20
            except psutil.Error:
                continue
        return figures


def _pss(process) -> int:
    import psutil

    try:
        return process.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return process.memory_info().rss


# --- traffic --------------------------------------------------------------------------
def proposal(n: int) -> dict:
    vendors = ("acme", "globex", "initech", "umbrella")
    if n % 20 == 19:  # one in twenty needs a reviewer (the stack's policy)
        return {
            "name": "payment.release",
            "target": f"vendor:{vendors[n % 4]}",
            "args": {"invoice": f"INV-{n}"},
            "amount": "20000.00",
            "currency": "USD",
        }
    return {
        "name": "invoice.read" if n % 2 == 0 else "invoice.flag",
        "target": f"vendor:{vendors[n % 4]}",
        "args": {"invoice": f"INV-{n % 1000}", "lines": 14},
        "amount": "125.00",
        "currency": "USD",
    }


@dataclass
class Traffic:
    """Simulated agents proposing actions until :meth:`stop` (or ``seconds``)."""

    base_url: str
    keys: list[str]
    pause: float = 0.0  # seconds between two proposals of one agent
    timeout: float = 10.0
    accepted: dict[str, str] = field(default_factory=dict)  # action_id -> verdict
    approvals: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (time, seconds)
    # attempts not answered 200: (when the attempt began, why)
    failures: list[tuple[float, str]] = field(default_factory=list)
    started: float = 0.0

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def retried(self) -> int:
        return len(self.failures)

    def failures_between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.failures if start <= at - self.started < end)

    async def run(self, seconds: float | None = None) -> None:
        import httpx

        # Idle connections are dropped by the client before uvicorn's keep-alive timeout
        # (5 s) can close them under a request being sent (a ReadError, not the server's).
        limits = httpx.Limits(max_connections=len(self.keys) + 10, keepalive_expiry=2.0)
        self.started = time.monotonic()
        async with httpx.AsyncClient(
            base_url=self.base_url, limits=limits, timeout=self.timeout
        ) as http:
            tasks = [
                asyncio.create_task(self._agent(http, key, i)) for i, key in enumerate(self.keys)
            ]
            if seconds is not None:
                try:
                    await asyncio.wait_for(self._stop.wait(), seconds)
                except TimeoutError:
                    pass
                self._stop.set()
            await asyncio.gather(*tasks)

    async def _call(self, http, method: str, url: str, key: str, **kwargs):
        """One request retried until it is answered 200/201 (or 20 s past the stop)."""
        headers = {"Authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
        give_up = None
        while True:
            began = time.monotonic()
            try:
                response = await http.request(method, url, headers=headers, **kwargs)
                if response.status_code in (200, 201):
                    return response, time.monotonic() - began
                reason = f"{response.status_code} {response.text[:120]}"
            except Exception as exc:  # noqa: BLE001 - any transport failure is retried
                reason = f"{type(exc).__name__}: {exc}"[:160]
            self.failures.append((began, reason))
            if self._stop.is_set():
                give_up = give_up or time.monotonic() + 20
                if time.monotonic() > give_up:
                    return None, 0.0
            await asyncio.sleep(0.25)

    async def _agent(self, http, key: str, index: int) -> None:
        response, _ = await self._call(http, "POST", "/api/v1/sessions", key, json={"goal": "load"})
        if response is None:
            return
        session = response.json()["session_id"]
        n = index
        while not self._stop.is_set():
            body = proposal(n)
            n += len(self.keys)
            response, took = await self._call(
                http,
                "POST",
                f"/api/v1/sessions/{session}/actions",
                key,
                json=body,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            if response is None:
                return
            answer = response.json()
            self.accepted[answer["action_id"]] = answer["verdict"]
            if answer.get("approval_id"):
                self.approvals.append(answer["approval_id"])
            self.latencies.append((time.monotonic() - self.started, took))
            if self.pause:
                await asyncio.sleep(self.pause)
        await self._call(http, "POST", f"/api/v1/sessions/{session}/end", key)

    def percentile(self, p: float) -> float:
        values = sorted(took for _, took in self.latencies)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(p * len(values)))] * 1000


# --- seeding (runs inside the stack's environment) --------------------------------------
def _seed(agents: int, events: int) -> dict:
    import django

    django.setup()
    from decimal import Decimal

    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from audit.services import record
    from console import services
    from console.authorize import services as authz
    from console.models import Agent

    User = get_user_model()
    admin = User.objects.create_superuser("stack-admin", password="stack-admin-password")
    reviewer = User.objects.create_user("stack-reviewer", password="stack-reviewer-password")
    reviewer.groups.add(Group.objects.get_or_create(name="reviewer")[0])
    authz.create_policy(by=admin, name="payment-review", module=POLICY)
    keys = []
    for i in range(agents):
        agent = services.register_agent(
            name=f"stack-agent-{i}",
            by=admin,
            scope={
                "allowed_actions": ["invoice.*", "payment.*"],
                "allowed_targets": ["vendor:*"],
            },
        )
        Agent.objects.filter(pk=agent.pk).update(
            risk_tier=2,
            risk_percent=Decimal("40"),
            risk_profile_score=Decimal("60"),
            effective_tier=2,
        )
        _, key = services.issue_key(agent, by=admin)
        keys.append(key)
    for start in range(0, events, 1000):
        with transaction.atomic():
            for i in range(start, min(events, start + 1000)):
                record("stack.bulk", actor="system:stack", reason=f"bulk event {i}")

    def session_of(user) -> str:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        return store.session_key

    return {
        "keys": keys,
        "admin_session": session_of(admin),
        "reviewer_session": session_of(reviewer),
    }


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    seed = sub.add_parser("seed", help="set up users and agents (in the stack's environment)")
    seed.add_argument("--agents", type=int, default=1)
    seed.add_argument("--events", type=int, default=0, help="extra bulk events to record")
    options = parser.parse_args(argv)
    if options.command == "seed":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(_seed(options.agents, options.events)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
