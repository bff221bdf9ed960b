"""Run every benchmark in bench/ with short settings (``make bench``); see bench/README.md.

    .venv/bin/python bench/run_all.py [--full] [--only NAME ...] [--shared]

Each benchmark runs in its own process, one after the other, its output kept in
``var/bench/NAME.txt`` and its last lines printed. By default they run against a private
PostgreSQL and Redis started for the run (bench/stack.py; the benchmarks drop and
re-create their databases there), so nothing on the machine's shared servers is touched;
``--shared`` uses ``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL`` (or each benchmark's default)
instead. ``--full`` runs each with its own defaults (the figures in bench/README.md; tens
of minutes in all). Exit status 1 if any benchmark failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import PrivatePostgres, PrivateRedis, Unavailable, free_port  # noqa: E402

# name -> (database name, short arguments); each benchmark's own defaults with --full.
BENCHMARKS: dict[str, tuple[str | None, list[str]]] = {
    "event_append": (
        "warden_bench",
        ["--seconds", "3", "--writers", "16", "--rounds", "1", "--verify-events", "10000"],
    ),
    "evaluate": (
        "warden_bench_evaluate",
        ["--seconds", "3", "--warmup", "1", "--clients", "16", "--rounds", "1"],
    ),
    "approval_latency": ("warden_bench_approvals", ["--rounds", "30"]),
    "trust": (
        "warden_bench_trust",
        ["--agents", "500", "--events-per-agent", "40", "--samples", "50"],
    ),
    "export": ("warden_bench_export", ["--events", "100000", "--session-events", "2000"]),
    # soak starts a private stack of its own
    "soak": (None, ["--agents", "50", "--minutes", "0.5", "--think", "0", "--sample", "5"]),
}
TIMEOUT = {"short": 900, "full": 3 * 3600}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run every benchmark")
    parser.add_argument("--full", action="store_true", help="each benchmark's own defaults")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=None)
    parser.add_argument("--shared", action="store_true", help="BENCH_* URLs, not a private stack")
    options = parser.parse_args(argv)
    names = options.only or list(BENCHMARKS)
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)

    postgres = redis = None
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    scratch = tempfile.TemporaryDirectory(prefix="warden-bench-")
    try:
        if not options.shared:
            try:
                postgres = PrivatePostgres(Path(scratch.name) / "pg")
                redis = PrivateRedis(Path(scratch.name) / "redis")
            except Unavailable as exc:
                print(f"no private stack ({exc}); using the BENCH_* URLs / defaults")
            else:
                postgres.start()
                redis.start()
                print(f"private PostgreSQL on :{postgres.port}, Redis on :{redis.port}")
        results = []
        for name in names:
            database, short = BENCHMARKS[name]
            args = [] if options.full else short
            run_env = dict(env)
            if postgres is not None and database:
                run_env["BENCH_DATABASE_URL"] = postgres.url(database)
            if redis is not None:
                run_env["BENCH_REDIS_URL"] = redis.url(8)
            if name == "approval_latency":
                args = [*args, "--port", str(free_port())]
            command = [sys.executable, str(ROOT / "bench" / f"{name}.py"), *args]
            print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
            started = time.monotonic()
            try:
                done = subprocess.run(
                    command,
                    cwd=ROOT,
                    env=run_env,
                    capture_output=True,
                    text=True,
                    timeout=TIMEOUT["full" if options.full else "short"],
                )
                output, code = done.stdout + done.stderr, done.returncode
            except subprocess.TimeoutExpired as exc:
                output = (exc.stdout or b"").decode(errors="replace") if exc.stdout else ""
                code = "timeout"
            elapsed = time.monotonic() - started
            (out / f"{name}.txt").write_text(output)
            print("\n".join(output.rstrip().splitlines()[-25:]))
            results.append((name, code, elapsed))
    finally:
        if redis is not None:
            redis.close()
        if postgres is not None:
            postgres.close()
        scratch.cleanup()

    print(f"\n{'benchmark':<18} {'status':>8} {'seconds':>8}   output")
    for name, code, elapsed in results:
        status = "ok" if code == 0 else f"FAILED ({code})"
        print(f"{name:<18} {status:>8} {elapsed:>8.1f}   var/bench/{name}.txt")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
