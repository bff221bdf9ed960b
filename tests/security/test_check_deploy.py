"""``manage.py check --deploy`` under production settings (security baseline).

Runs Django's deployment checks in a subprocess with the environment a production install
sets (with and without ``CSRF_TRUSTED_ORIGINS``), and asserts zero warnings; then shows the
check is live by breaking one setting at a time and seeing the matching warning. Last, the
settings such an install ends up with, and ``DATABASE_URL`` given as an SQLite URL.
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


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A production install's environment; an override of None leaves that variable out."""
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
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    # The browser tests set it in this process (Playwright's loop + the sync ORM); a
    # production install never does, and Django's async.E001 check says so.
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def python(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess:
    """``python ARGS`` in the checkout, with ``env`` as its whole environment."""
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess:
    return python(env, "manage.py", "check", "--deploy", "--fail-level", "WARNING", timeout=120)


def settings_in(env: dict[str, str], *expressions: str) -> list:
    """The values of ``expressions`` (about ``s``, the settings) in a fresh process."""
    code = (
        "import django, json, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'console.settings');"
        "django.setup();"
        "from django.conf import settings as s;"
        f"print(json.dumps([{', '.join(expressions)}]))"
    )
    result = python(env, "-c", code, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"CSRF_TRUSTED_ORIGINS": None}],
    ids=["csrf-trusted-origins", "no-csrf-trusted-origins"],
)
def test_production_settings_pass_check_deploy_with_zero_warnings(tmp_path, overrides):
    result = check_deploy(production_env(tmp_path, **overrides))
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
    values = settings_in(
        production_env(tmp_path),
        "s.DEBUG",
        "s.SESSION_COOKIE_SECURE",
        "s.CSRF_COOKIE_SECURE",
        "s.SESSION_COOKIE_HTTPONLY",
        "s.SECURE_SSL_REDIRECT",
        "s.SECURE_HSTS_SECONDS",
        "s.X_FRAME_OPTIONS",
        "s.SECURE_CONTENT_TYPE_NOSNIFF",
        "s.ALLOWED_HOSTS",
    )
    assert values == [
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


def test_sqlite_database_urls_are_accepted(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
        "WARDEN_VAR_DIR": str(tmp_path),
    }
    env.pop("REDIS_URL", None)
    engine, embedded = settings_in(env, "s.DATABASES['default']['ENGINE']", "s.EMBEDDED")
    assert (engine, embedded) == ("django.db.backends.sqlite3", False)
