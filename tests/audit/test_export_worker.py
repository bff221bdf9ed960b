"""Production mode end to end: a big export is queued on Redis, a real Celery worker that
listens to the ``exports`` queue only writes it, and the API reports progress and the file."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from audit.models import Export
from audit.services import record
from tests.helpers import client_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.production


@pytest.fixture
def exports_worker(transactional_db, settings, tmp_path):
    settings.WARDEN_EXPORT_DIR = tmp_path
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
        ),
        "WARDEN_KEY_DIR": str(settings.WARDEN_KEY_DIR),
        "WARDEN_EXPORT_DIR": str(tmp_path),
        "WARDEN_CELERY_EAGER": "0",
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "console",
            "worker",
            "-Q",
            "exports",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_a_worker_runs_a_big_export_from_the_exports_queue(exports_worker, make_operator, settings):
    settings.WARDEN_EXPORT_ASYNC_ROWS = 20
    for start in range(0, 60, 20):
        with transaction.atomic():
            for i in range(start, start + 20):
                record("test.bulk", actor="system:test", reason=f"row {i}")
    client = client_for(make_operator("compliance"))
    response = client.get("/api/v1/events/export.csv", {"event_type": "test.bulk"})
    assert response.status_code == 202, response.content
    status_url = response.json()["status_url"]
    deadline = time.monotonic() + 90
    status = response.json()
    while status["status"] in ("queued", "running") and time.monotonic() < deadline:
        assert exports_worker.poll() is None, exports_worker.stderr.read().decode()[-2000:]
        time.sleep(0.5)
        status = client.get(status_url).json()
    assert status["status"] == "done", status
    assert status["rows_done"] == status["rows_total"] == 60
    data = b"".join(client.get(status["download_url"]).streaming_content)
    assert hashlib.sha256(data).hexdigest() == status["manifest"]["sha256"]
    assert Export.objects.get().streamed is False
