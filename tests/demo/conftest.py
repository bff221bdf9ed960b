"""What the demo tests share: the seeded demo (``bootstrap_demo``), processes whose printed
lines they read, and waiting for a condition."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_files(tmp_path) -> tuple[Path, Path]:
    """Where ``bootstrap_demo`` writes the agents' keys and the operators' logins."""
    return tmp_path / "demo-keys.json", tmp_path / "demo-login.txt"


@pytest.fixture
def bootstrap(demo_files):
    """Runs ``manage.py bootstrap_demo`` into ``demo_files``; returns the keys document and
    what it printed. Call it again to re-run it."""

    def run() -> tuple[dict, str]:
        keys, logins = demo_files
        out = StringIO()
        call_command("bootstrap_demo", keys_file=str(keys), logins_file=str(logins), stdout=out)
        return json.loads(keys.read_text()), out.getvalue()

    return run


def wait_for(condition, timeout: float, what: str, *, interval: float = 0.1):
    """``condition()``'s first true value, asked every ``interval`` seconds for at most
    ``timeout``; AssertionError naming ``what`` if none came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class Spawned:
    """A process started in the checkout, its printed lines (stdout and stderr) collected as
    they come."""

    def __init__(self, args: list[str], *, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            args,
            cwd=str(ROOT),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15) -> bool:
        """Send ``signum`` and wait up to ``timeout`` seconds, then kill. True if it ended by
        itself (or had already ended), False if it had to be killed."""
        ended = True
        if self.process.poll() is None:
            self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                ended = False
                self.process.kill()
                self.process.wait(timeout=5)
        self.reader.join(timeout=5)
        return ended
