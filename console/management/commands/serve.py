"""manage.py serve: the console on uvicorn (HTTP + websockets), as `make run` starts it.

In embedded mode it also runs the periodic jobs in-process (there is no Celery beat).

``--demo`` also starts the demo fleet (``python -m examples.demo_fleet``, the simulated
agents seeded by ``manage.py bootstrap_demo``) as a subprocess once the server answers,
prints what to look at first, and stops the fleet when the server stops. The fleet's
lines go to ``var/demo-fleet.log`` (``--demo-log -`` prints them here instead).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from console.scheduler import InProcessScheduler

READY_TIMEOUT = 60.0


def proxy_options() -> dict:
    """X-Forwarded-For / -Proto are believed only from settings.WARDEN_TRUSTED_PROXIES."""
    trusted = settings.WARDEN_TRUSTED_PROXIES
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": ",".join(trusted) or ""}


class Command(BaseCommand):
    help = "Serve the console and API with uvicorn."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1, help="production mode only")
        parser.add_argument("--no-scheduler", action="store_true")
        parser.add_argument(
            "--demo",
            action="store_true",
            help="also run the demo fleet (run manage.py bootstrap_demo first)",
        )
        parser.add_argument(
            "--demo-keys", default=None, help="the fleet's keys (default var/demo-keys.json)"
        )
        parser.add_argument(
            "--demo-log",
            default=None,
            help="where the fleet prints (default var/demo-fleet.log; '-' for this terminal)",
        )

    def handle(
        self,
        *args,
        host,
        port,
        workers,
        no_scheduler=False,
        demo=False,
        demo_keys=None,
        demo_log=None,
        **options,
    ):
        if settings.EMBEDDED and workers != 1:
            self.stderr.write(
                "embedded mode keeps one process (in-memory channel layer); using 1 worker"
            )
            workers = 1
        if settings.CELERY_TASK_ALWAYS_EAGER and not no_scheduler:
            InProcessScheduler().start()
        fleet = None
        if demo:
            keys = Path(demo_keys) if demo_keys else settings.VAR_DIR / "demo-keys.json"
            if not keys.exists():
                self.stderr.write(f"{keys} is missing: run `manage.py bootstrap_demo` first")
                return
            log = demo_log or str(settings.VAR_DIR / "demo-fleet.log")
            # The fleet is refused on purpose (paused agents, closed sessions): those 4xx
            # answers are the demo working, not news for this terminal. 5xx still show.
            logging.getLogger("django.request").setLevel(logging.ERROR)
            fleet = DemoFleet(host=host, port=port, keys=keys, log=log, out=self.stdout.write)
            fleet.start_when_ready()
        try:
            if fleet is not None and workers == 1:
                config = uvicorn.Config(
                    "console.asgi:application",
                    host=host,
                    port=port,
                    lifespan="off",
                    log_level="warning",
                    **proxy_options(),
                )
                try:
                    DemoServer(config, fleet).run()
                except KeyboardInterrupt:
                    pass
            else:
                uvicorn.run(
                    "console.asgi:application",
                    host=host,
                    port=port,
                    workers=workers,
                    lifespan="off",
                    log_level="warning",
                    **proxy_options(),
                )
        finally:
            if fleet is not None:
                fleet.stop()


class DemoServer(uvicorn.Server):
    """uvicorn that, on Ctrl-C or SIGTERM, stops the fleet first — so its agents end their
    sessions while the console still answers — and then itself. A second Ctrl-C exits at
    once."""

    def __init__(self, config: uvicorn.Config, fleet: DemoFleet) -> None:
        super().__init__(config)
        self.fleet = fleet
        self._stopping = False

    def handle_exit(self, sig, frame) -> None:
        if self._stopping or self.should_exit:
            super().handle_exit(sig, frame)
            return
        self._stopping = True

        def stop_fleet_then_server() -> None:
            self.fleet.stop()
            uvicorn.Server.handle_exit(self, sig, frame)

        threading.Thread(target=stop_fleet_then_server, name="demo-fleet-stop", daemon=True).start()


class DemoFleet:
    """The fleet subprocess: started once the server accepts connections, stopped with it."""

    def __init__(self, *, host: str, port: int, keys: Path, log: str, out) -> None:
        self.host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        self.port = port
        self.url = f"http://{self.host}:{port}"
        self.keys = keys
        self.log = log
        self.out = out
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start_when_ready(self) -> None:
        threading.Thread(target=self._start, name="demo-fleet-starter", daemon=True).start()

    def _listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _start(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not self._listening():
            if self._stopping.is_set() or time.monotonic() > deadline:
                return
            time.sleep(0.1)
        command = [
            sys.executable,
            "-m",
            "examples.demo_fleet",
            "--url",
            self.url,
            "--keys",
            str(self.keys),
            "--parent-pid",
            str(os.getpid()),
        ]
        with self._lock:
            if self._stopping.is_set():
                return
            if self.log == "-":
                stdout = None
            else:
                self._log_file = open(self.log, "a", buffering=1)  # noqa: SIM115 (closed in stop)
                stdout = self._log_file
            self.process = subprocess.Popen(
                command,
                cwd=str(settings.BASE_DIR),
                stdout=stdout,
                stderr=subprocess.STDOUT,
                # Its own process group: a Ctrl-C in this terminal reaches the server, and
                # the server stops the fleet (SIGTERM) on its way out.
                start_new_session=True,
            )
        self.out(guide(self.url, self.log))

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            process = self.process
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None


def _admin_password() -> str:
    path = settings.VAR_DIR / "demo-login.txt"
    try:
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "admin":
                return parts[1]
            if len(parts) == 1:  # the one-line format of earlier versions
                return parts[0]
    except OSError:
        pass
    return "(see var/demo-login.txt)"


def guide(url: str, log: str) -> str:
    """What `make run` prints once the console and the fleet are up."""
    fleet_log = "this terminal" if log == "-" else f"tail -f {log}"
    return f"""
  Warden is running: {url}/
  Log in as admin / {_admin_password()}
  (reviewer, oncall, compliance, viewer: passwords in var/demo-login.txt)

  What to look at first
  1. Approvals ({url}/approvals/) — the queue fills within a few seconds:
     procurement-agent's contract commits, support-agent's refunds, and
     observability-agent's production rollback at 2 a.m. (tier 4: four-eyes, so
     approve as admin, then log in as reviewer and approve again).
     Approve or reject: the agent waiting on it acts on your decision.
  2. Agents ({url}/agents/) — procurement-agent drifts: its 4th contract inside
     24 h is HALTed, its trust falls with every HALT, a re-authorization review
     joins the queue, and at tier 4 Warden pauses it. inbox-summariser is HALTed
     for e-mailing a canary token that a prompt injection asked for.
  3. Audit log ({url}/audit/) — every step signed; support-agent's replies are
     stored with [REDACTED:email] / [REDACTED:phone].
  4. Contain: Pause, Resume or Revoke any agent from its row — a paused agent's
     new sessions are refused and it backs off; a revoked one stops.
  5. Policies ({url}/policies/) — demo-refund-limit, a Rego policy on trial in
     shadow mode: open a refund's event to see what it would have blocked, or
     Backtest it against support-agent before you enforce it.

  The agents' own view: {fleet_log}
"""
