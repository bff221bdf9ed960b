"""Settings of the benchmark's server: Warden's own, plus the bare endpoint (bench.urls).

Used only by ``bench/evaluate.py`` (``DJANGO_SETTINGS_MODULE=bench.settings``); the bare
endpoint is never part of Warden's URLs.
"""

from console.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
