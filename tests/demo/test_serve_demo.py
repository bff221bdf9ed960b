"""`make run` end to end: ``manage.py serve --demo`` starts the fleet once the console
answers, prints what to look at first, and stops the fleet when it stops.

Runs the real commands in subprocesses on a fresh embedded install (its own
``WARDEN_VAR_DIR``), whatever mode the suite runs in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

from tests.demo.conftest import ROOT, Spawned, wait_for
from tests.liveserver import free_port


def manage(*args: str, env: dict, timeout: float = 60) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # three fresh processes (migrate, bootstrap_demo, serve): ~20 s unloaded
def test_serve_demo_runs_the_fleet_next_to_the_console_and_stops_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(WARDEN_VAR_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    manage("migrate", "--noinput", env=env)
    logins = manage("bootstrap_demo", env=env)
    admin_password = re.search(r"^admin / (\S+)$", logins, re.M).group(1)

    port = free_port()
    server = Spawned([sys.executable, "manage.py", "serve", "--port", str(port), "--demo"], env=env)
    log = tmp_path / "demo-fleet.log"
    try:
        wait_for(lambda: "What to look at first" in server.output, 30, "the guide", interval=0.2)
        wait_for(
            lambda: log.exists() and len(re.findall(r"session\s+opened", log.read_text())) >= 4,
            20,
            "the four agents at work",
            interval=0.2,
        )
    finally:
        stopped = server.stop(signal.SIGINT, timeout=30)
    assert stopped, "the server was still running 30 s after SIGINT (killed)"

    guide = server.output
    assert f"http://127.0.0.1:{port}/" in guide
    assert f"admin / {admin_password}" in guide
    assert f"http://127.0.0.1:{port}/approvals/" in guide
    assert "the queue fills within a few seconds" in guide
    assert f"http://127.0.0.1:{port}/policies/" in guide and "demo-refund-limit" in guide

    text = log.read_text()
    for agent in ("procurement", "support", "observability", "summariser"):
        assert re.search(rf"^\S+\s+{agent}\s+session\s+opened", text, re.M), agent
    # The fleet was stopped before the server: its agents ended their sessions while the
    # console still answered, it said its last words, and no process is left.
    assert "could not end session" not in text, text[-2000:]
    assert text.rstrip().endswith("done"), text[-500:]
    pid = int(re.search(r"agents → \S+ \(pid (\d+)\)", text).group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pass
    else:
        raise AssertionError(f"the fleet (pid {pid}) outlived the server")
