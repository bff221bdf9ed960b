"""tracemalloc inside a benchmark's server process (bench only; never in Warden's settings).

``bench/settings.py`` calls :func:`start` when ``BENCH_TRACEMALLOC`` names a directory
(``bench/soak.py --trace DIR`` sets it): each process that loads those settings traces its
Python allocations and, every ``BENCH_TRACEMALLOC_EVERY`` seconds (60), appends to
``DIR/<pid>.txt`` its resident set, the memory tracemalloc sees and the allocation sites
(by traceback) that grew most since the first snapshot after ``BENCH_TRACEMALLOC_WARMUP``
seconds (60), with ``BENCH_TRACEMALLOC_FRAMES`` frames per site (3). Memory the resident
set gains that tracemalloc does not see was allocated outside Python's allocator (a C or
C++ library). Tracing and its snapshots (seconds of CPU each, holding the GIL) slow the
server several times over: trace a smaller soak (``--agents 50``), not the full one, and
judge growth from the "traced" figures, not the resident set (the snapshots themselves
raise it: the uvicorn parent, which serves nothing, grew 75 MB resident in a traced run). The
parent's own file shows what tracing alone adds.
"""

from __future__ import annotations

import linecache
import os
import threading
import time
import tracemalloc
from pathlib import Path

TOP = 12


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [
            tracemalloc.Filter(False, tracemalloc.__file__),
            tracemalloc.Filter(False, __file__),
            # the source lines read to print the tracebacks below
            tracemalloc.Filter(False, linecache.__file__),
        ]
    )


def _watch(path: Path, every: float, warmup: float) -> None:
    began = time.monotonic()
    time.sleep(warmup)
    base = _snapshot()
    base_resident = _resident_mb()
    base_traced = tracemalloc.get_traced_memory()[0] / 2**20
    with path.open("a") as out:
        out.write(
            f"# baseline at {time.monotonic() - began:.0f} s: resident {base_resident:.1f} MB, "
            f"traced {base_traced:.1f} MB\n"
        )
    while True:
        time.sleep(every)
        snapshot = _snapshot()
        resident = _resident_mb()
        traced = tracemalloc.get_traced_memory()[0] / 2**20
        lines = [
            f"## at {time.monotonic() - began:.0f} s: resident {resident:.1f} MB "
            f"({resident - base_resident:+.1f}), traced {traced:.1f} MB "
            f"({traced - base_traced:+.1f})"
        ]
        for stat in snapshot.compare_to(base, "traceback")[:TOP]:
            lines.append(
                f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks "
                f"(now {stat.size / 1024:.1f} KiB)"
            )
            lines.extend(f"      {line}" for line in stat.traceback.format(most_recent_first=True))
        with path.open("a") as out:
            out.write("\n".join(lines) + "\n")


def start(directory: str) -> None:
    frames = int(os.environ.get("BENCH_TRACEMALLOC_FRAMES") or 3)
    every = float(os.environ.get("BENCH_TRACEMALLOC_EVERY") or 60)
    warmup = float(os.environ.get("BENCH_TRACEMALLOC_WARMUP") or 60)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(frames)
    path = folder / f"{os.getpid()}.txt"
    threading.Thread(
        target=_watch, args=(path, every, warmup), name="bench-tracemalloc", daemon=True
    ).start()
