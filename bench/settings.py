"""Settings of the benchmark's server: Warden's own, plus the bare endpoint (bench.urls).

Used by ``bench/evaluate.py`` (``DJANGO_SETTINGS_MODULE=bench.settings``) and by
``bench/soak.py --trace`` (with ``BENCH_TRACEMALLOC``: tracemalloc in each server process,
bench/memtrace.py); the bare endpoint is never part of Warden's URLs.
"""

import os

from console.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_TRACEMALLOC"):
    from bench import memtrace

    memtrace.start(os.environ["BENCH_TRACEMALLOC"])
