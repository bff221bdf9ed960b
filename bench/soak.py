"""Soak: many simulated agents against the production stack for minutes (issue 8).

    .venv/bin/python bench/soak.py [--agents 200] [--minutes 10] [--think 4] [--workers 2]
                                   [--trace DIR]

Starts a private stack (bench/stack.py: its own PostgreSQL and Redis on free loopback
ports, ``manage.py serve`` with ``--workers`` uvicorn processes, one Celery worker), then
``--agents`` simulated agents (asyncio + httpx, one session and one connection each)
propose actions for ``--minutes``: each sends its next proposal ``--think`` seconds after
the last answer (0: at once, a closed loop at saturation). One proposal in twenty needs a
reviewer (an approval request is opened), the rest are allowed. An agent retries a refused
or unanswered proposal with the same ``Idempotency-Key``.

Prints, at the end:

* proposals accepted, per second, error rate (attempts not answered 200 / all attempts),
  p50 / p90 / p99 / max latency;
* events reconciled: accepted proposals = ``action.evaluated`` events (each accepted
  action id exactly once), no event waiting for integration, ``verify_log`` passes;
* memory of each process (proportional set size: server = uvicorn and its workers,
  worker = Celery, redis, postgres = the postmaster and its backends) sampled every
  ``--sample`` seconds, eleven samples spread over the run, and the first sample after
  warm-up (the first 10 %) against the last: flat if it grew less than 10 % + 20 MB
  (PostgreSQL's is shown, not judged: its backends map more of the shared buffers as they
  touch them, and the pool opens more backends under load).

``--trace DIR`` serves with ``bench.settings`` and ``BENCH_TRACEMALLOC=DIR``: each server
process traces its Python allocations and writes, every minute after the first, the sites
that grew most to ``DIR/<pid>.txt`` (bench/memtrace.py). Tracing slows the server down.

Exit status 1 if there were errors, the counts do not reconcile, the log does not verify,
or the memory of the server or worker is not flat. ``make soak`` runs the default
(10 minutes); ``tests/load/`` runs the same code for 30 s with 50 agents.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stack import Stack, Traffic  # noqa: E402

JUDGED = ("server", "worker", "redis")


def flat(first: float, last: float) -> bool:
    return last <= first * 1.10 + 20


async def _drive(stack: Stack, keys: list[str], seconds: float, think: float, sample: float):
    traffic = Traffic(stack.server_url, keys, pause=think, timeout=30)
    samples: list[tuple[float, dict[str, float]]] = []

    async def sampler() -> None:
        while not traffic._stop.is_set():
            figures = await asyncio.to_thread(stack.rss_mb)
            samples.append((time.monotonic() - traffic.started, figures))
            try:
                await asyncio.wait_for(traffic._stop.wait(), sample)
            except TimeoutError:
                pass

    running = asyncio.create_task(traffic.run(seconds))
    await asyncio.sleep(0)
    watching = asyncio.create_task(sampler())
    await running
    await watching
    samples.append((time.monotonic() - traffic.started, await asyncio.to_thread(stack.rss_mb)))
    return traffic, samples


def _spread(samples: list, count: int) -> list:
    """``count`` samples evenly spread over the run (first and last included)."""
    if len(samples) <= count:
        return samples
    step = (len(samples) - 1) / (count - 1)
    return [samples[round(i * step)] for i in range(count)]


def run(
    stack: Stack,
    *,
    agents: int,
    seconds: float,
    think: float = 0.0,
    workers: int = 2,
    sample: float = 10.0,
    warmup: float | None = None,
    trace: str | None = None,
) -> dict:
    """Seed, serve, drive and check; the figures as a dict (see the module docstring)."""
    seed = stack.seed(agents=agents)
    if trace:
        stack.serve(
            workers=workers, DJANGO_SETTINGS_MODULE="bench.settings", BENCH_TRACEMALLOC=trace
        )
    else:
        stack.serve(workers=workers)
    stack.worker()
    began = time.monotonic()
    traffic, samples = asyncio.run(_drive(stack, seed["keys"], seconds, think, sample))
    elapsed = time.monotonic() - began
    stack.wait_integrated(timeout=120)
    ids = stack.evaluated_action_ids()
    verified, verify_output = stack.verify_log()
    warmup = seconds * 0.1 if warmup is None else warmup
    after_warmup = [s for s in samples if s[0] >= warmup] or samples
    first, last = after_warmup[0], samples[-1]
    memory = {}
    for name in sorted(set(first[1]) | set(last[1])):
        start, end = first[1].get(name, 0.0), last[1].get(name, 0.0)
        memory[name] = {
            "start_mb": round(start, 1),
            "end_mb": round(end, 1),
            "peak_mb": round(max(s[1].get(name, 0.0) for s in samples), 1),
            "flat": flat(start, end),
            "judged": name in JUDGED,
            "series_mb": [round(figures.get(name, 0.0)) for _, figures in _spread(samples, 11)],
        }
    attempts = len(traffic.accepted) + traffic.retried
    return {
        "agents": agents,
        "seconds": round(elapsed, 1),
        "think_seconds": think,
        "server_workers": workers,
        "accepted": len(traffic.accepted),
        "per_second": round(len(traffic.accepted) / elapsed, 1) if elapsed else 0.0,
        "errors": traffic.retried,
        "error_rate": traffic.retried / attempts if attempts else 0.0,
        "error_samples": [reason for _, reason in traffic.failures[:5]],
        "p50_ms": round(traffic.percentile(0.50), 1),
        "p90_ms": round(traffic.percentile(0.90), 1),
        "p99_ms": round(traffic.percentile(0.99), 1),
        "max_ms": round(traffic.percentile(1.0), 1),
        "approvals_opened": len(traffic.approvals),
        "action_evaluated_events": len(ids),
        "reconciled": len(ids) == len(set(ids)) == len(traffic.accepted)
        and set(ids) == set(traffic.accepted),
        "verify_log": verified,
        "verify_output": verify_output.splitlines()[0] if verify_output else "",
        "memory": memory,
        "memory_samples": len(samples),
    }


def passed(result: dict) -> bool:
    return (
        result["errors"] == 0
        and result["reconciled"]
        and result["verify_log"]
        and all(m["flat"] for m in result["memory"].values() if m["judged"])
    )


def report(result: dict) -> str:
    lines = [
        f"{result['agents']} agents, {result['seconds']:g} s, think {result['think_seconds']:g} s, "
        f"{result['server_workers']} uvicorn worker(s)",
        f"accepted {result['accepted']} proposals ({result['per_second']:g}/s), "
        f"errors {result['errors']} (rate {result['error_rate']:.4%})",
        f"latency p50 {result['p50_ms']:g} ms, p90 {result['p90_ms']:g} ms, "
        f"p99 {result['p99_ms']:g} ms, max {result['max_ms']:g} ms",
        f"approval requests opened {result['approvals_opened']}",
        f"action.evaluated events {result['action_evaluated_events']}: "
        f"{'reconciled' if result['reconciled'] else 'NOT RECONCILED'}; "
        f"verify_log {'passes' if result['verify_log'] else 'FAILS'} ({result['verify_output']})",
        f"memory (PSS MB, after warm-up → end, {result['memory_samples']} samples):",
    ]
    for name, m in result["memory"].items():
        verdict = ("flat" if m["flat"] else "GROWING") if m["judged"] else "(not judged)"
        lines.append(
            f"  {name:<9} {m['start_mb']:>8.1f} → {m['end_mb']:>8.1f}  peak {m['peak_mb']:>8.1f}  {verdict}"
        )
        lines.append(f"            over the run: {' '.join(str(v) for v in m['series_mb'])}")
    for reason in result["error_samples"]:
        lines.append(f"  error: {reason}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="simulated agents for minutes (soak)")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--think", type=float, default=4.0, help="seconds between proposals")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--sample", type=float, default=10.0, help="memory sample interval")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    parser.add_argument("--trace", metavar="DIR", help="tracemalloc in the server, reports in DIR")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="warden-soak-") as directory:
        stack = Stack(Path(directory), fsync=True)
        try:
            stack.start()
            result = run(
                stack,
                agents=options.agents,
                seconds=options.minutes * 60,
                think=options.think,
                workers=options.workers,
                sample=options.sample,
                trace=str(Path(options.trace).resolve()) if options.trace else None,
            )
        finally:
            stack.stop()
    print(report(result))
    if options.json:
        print(json.dumps(result))
    ok = passed(result)
    print("soak passed" if ok else "soak FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    sys.exit(main())
