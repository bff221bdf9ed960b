"""Hot-path helpers leave nothing to the cyclic garbage collector.

A full collection pass in a server worker holds its GIL, and the whole agent's proposals
wait when that worker is the one holding the agent's lock (bench/README, "Night run"). Two
sources of cycles made on every proposal were found with ``gc.DEBUG_SAVEALL`` and removed:
a self-calling closure in the bucket arithmetic, and a ctypes array type created (and
dropped) for every signature. These tests fail if either comes back.
"""

import datetime as dt
import gc

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.keys import signing_function
from console.authorize import buckets


def _cycles_left_by(work, times: int = 50) -> int:
    """How many unreachable objects in cycles ``work`` leaves after ``times`` calls."""
    work()  # warm caches first
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        for _ in range(times):
            work()
        return gc.collect()
    finally:
        if was_enabled:
            gc.enable()


def test_bucket_cover_makes_no_cycles():
    now = dt.datetime(2026, 12, 1, 23, 59, 58, 123456, tzinfo=dt.UTC)
    since = now - dt.timedelta(hours=72, seconds=17)

    def work():
        buckets.cover(since, now)
        buckets.aligned_runs(1_000_003, 1_400_017)

    assert _cycles_left_by(work) == 0


def test_signing_makes_no_cycles():
    sign = signing_function(Ed25519PrivateKey.generate())
    messages = [bytes([n]) * 32 for n in range(50)]

    def work():
        for message in messages:
            sign(message)

    assert _cycles_left_by(work) == 0
