"""``python -m examples.demo_fleet --url URL --keys var/demo-keys.json [options]``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

from .runner import Options, Printer
from .stories import AGENTS


def load_keys(path: Path) -> dict:
    document = json.loads(path.read_text())
    agents = document.get("agents") if isinstance(document, dict) else None
    if not isinstance(agents, dict):
        raise ValueError(f"{path}: no 'agents' (run manage.py bootstrap_demo)")
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m examples.demo_fleet",
        description="Four simulated agents governed by Warden over its HTTP API.",
    )
    parser.add_argument(
        "--url", required=True, help="Warden's base URL, e.g. http://127.0.0.1:8000"
    )
    parser.add_argument("--keys", required=True, type=Path, help="var/demo-keys.json")
    parser.add_argument(
        "--only", action="append", choices=sorted(AGENTS), help="run only these agents"
    )
    defaults = Options()
    parser.add_argument("--pace", type=float, default=defaults.pace, help="seconds between steps")
    parser.add_argument(
        "--hour", type=float, default=defaults.hour, help="seconds per procurement story hour"
    )
    parser.add_argument(
        "--rest", type=float, default=defaults.rest, help="seconds between rounds of a story"
    )
    parser.add_argument(
        "--approval-timeout",
        type=float,
        default=defaults.approval_timeout,
        help="seconds an agent waits for a reviewer",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        default=defaults.backoff,
        help="seconds between retries while paused or unreachable",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop after this many seconds (default: run until stopped)",
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=None,
        help="stop when this process is gone (manage.py serve --demo passes its own)",
    )
    args = parser.parse_args(argv)

    try:
        document = load_keys(args.keys)
    except (OSError, ValueError) as error:
        print(f"demo fleet: cannot read the keys: {error}", file=sys.stderr)
        return 2
    options = Options(
        pace=args.pace,
        hour=args.hour,
        rest=args.rest,
        approval_timeout=args.approval_timeout,
        backoff=args.backoff,
    )
    stop = threading.Event()
    printer = Printer()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    runners = []
    for role, runner_class in AGENTS.items():
        if args.only and role not in args.only:
            continue
        entry = document["agents"].get(role) or {}
        if not entry.get("key"):
            printer(role, "skipped", f"no key for {entry.get('name', role)} (revoked?)")
            continue
        runners.append(
            runner_class(
                url=args.url,
                key=entry["key"],
                options=options,
                stop=stop,
                printer=printer,
                secrets={"canary": document.get("canary")},
            )
        )
    printer("fleet", "start", f"{len(runners)} agents → {args.url} (pid {os.getpid()})")
    for runner in runners:
        runner.start()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not stop.is_set() and any(r.is_alive() for r in runners):
        if deadline is not None and time.monotonic() >= deadline:
            break
        if args.parent_pid is not None and os.getppid() != args.parent_pid:
            break  # the server that started us is gone
        stop.wait(0.2)
    stop.set()
    # Each agent ends its open session on the way out (a long-poll slice is ≤ 2 s).
    give_up = time.monotonic() + 6
    for runner in runners:
        runner.join(timeout=max(0.1, give_up - time.monotonic()))
    printer("fleet", "stop", "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
