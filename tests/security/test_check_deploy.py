"""``manage.py check --deploy`` under production settings (security baseline).

Runs Django's deployment checks in a subprocess with the environment a production install
sets, and asserts zero warnings; then shows the check is live by breaking one setting at a
time and seeing the matching warning.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "warden.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://warden.example.com",
        "WARDEN_HTTPS": "1",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/15",
        "WARDEN_VAR_DIR": str(tmp_path),
    }
    env.update(overrides)
    # The browser tests set it in this process (Playwright's loop + the sync ORM); a
    # production install never does, and Django's async.E001 check says so.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_with_zero_warnings(tmp_path):
    result = check_deploy(production_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("overrides", "warning"),
    [
        ({"DEBUG": "1"}, "security.W018"),
        ({"WARDEN_HTTPS": "0"}, "security.W004"),  # no HSTS without HTTPS
        ({"SECRET_KEY": "short"}, "security.W009"),
    ],
    ids=["debug", "no-https", "weak-secret"],
)
def test_the_check_catches_a_weakened_setting(tmp_path, overrides, warning):
    result = check_deploy(production_env(tmp_path, **overrides))
    assert result.returncode != 0
    assert warning in result.stdout + result.stderr


def test_production_settings_values(tmp_path):
    code = (
        "import django, json, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'console.settings');"
        "django.setup();"
        "from django.conf import settings as s;"
        "print(json.dumps([s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE,"
        " s.SESSION_COOKIE_HTTPONLY, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.X_FRAME_OPTIONS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.ALLOWED_HOSTS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        False,
        True,
        True,
        True,
        True,
        31536000,
        "DENY",
        True,
        ["warden.example.com"],
    ]
