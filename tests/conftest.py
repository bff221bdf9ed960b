"""Shared fixtures: operators with roles, API clients, agents, and log helpers.

The suite runs on the embedded default (SQLite) and, with DATABASE_URL/REDIS_URL set, on
PostgreSQL + Redis; tests marked ``production`` need the latter and are skipped otherwise.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.core.management.commands import flush as flush_command
from django.db import connections
from rest_framework.test import APIClient

from approvals import triggers as approval_triggers
from assessments import triggers as assessment_triggers
from audit import triggers
from console import services
from console.roles import ROLES
from tests.helpers import PRODUCTION, mark_assessed
from trust import triggers as trust_triggers


def pytest_collection_modifyitems(config, items):
    # Browser tests last: Playwright's sync API keeps an event loop in the main thread
    # while it runs, which asyncio tests must not meet.
    items.sort(key=lambda item: "browser" in item.keywords)
    if PRODUCTION:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL and Redis (set DATABASE_URL and REDIS_URL)")
    for item in items:
        if "production" in item.keywords:
            item.add_marker(skip)


# Transactional tests end with a flush, which the append-only triggers refuse (as they
# should in production). The suite lifts them for the flush only and puts them back.
_original_flush_handle = flush_command.Command.handle


def _flush_without_triggers(self, **options):
    connection = connections[options.get("database", "default")]
    triggers.drop(connection)
    assessment_triggers.drop(connection)
    approval_triggers.drop(connection)
    trust_triggers.drop(connection)
    try:
        return _original_flush_handle(self, **options)
    finally:
        triggers.install(connection)
        assessment_triggers.install(connection)
        approval_triggers.install(connection)
        trust_triggers.install(connection)


flush_command.Command.handle = _flush_without_triggers


@pytest.fixture(scope="session", autouse=True)
def _inline_integrator():
    """Tests read an event's log fields right after the request that recorded it, so the
    committing request integrates; production's background thread (the PostgreSQL
    default) has tests of its own (tests/audit/test_background_integrator.py)."""
    from django.conf import settings

    saved = settings.WARDEN_INTEGRATOR
    settings.WARDEN_INTEGRATOR = "inline"
    yield
    settings.WARDEN_INTEGRATOR = saved


@pytest.fixture(scope="session", autouse=True)
def _isolated_keys(tmp_path_factory):
    """The suite signs with its own keys, never the developer's var/keys (and writes its
    exports to a temporary directory)."""
    from django.conf import settings

    saved = (
        settings.WARDEN_KEY_DIR,
        settings.WARDEN_SIGNING_KEY,
        settings.PASSWORD_HASHERS,
        settings.WARDEN_EXPORT_DIR,
    )
    settings.WARDEN_KEY_DIR = tmp_path_factory.mktemp("keys")
    settings.WARDEN_SIGNING_KEY = ""
    # Test users need no slow password hashing (production keeps Django's PBKDF2).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Audit exports written by tests stay out of the developer's var/exports.
    settings.WARDEN_EXPORT_DIR = tmp_path_factory.mktemp("exports")
    yield
    (
        settings.WARDEN_KEY_DIR,
        settings.WARDEN_SIGNING_KEY,
        settings.PASSWORD_HASHERS,
        settings.WARDEN_EXPORT_DIR,
    ) = saved


@pytest.fixture(autouse=True)
def _celery_eager(request):
    """Celery tasks run in-process after commit, in both modes, as in embedded mode.

    Tests marked ``celery_worker`` talk to a real worker through the Redis broker instead.
    """
    from console.celery import app

    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    eager = "celery_worker" not in request.keywords
    app.conf.task_always_eager = eager
    app.conf.task_eager_propagates = eager
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture
def make_operator(db):
    from django.contrib.auth import get_user_model

    User = get_user_model()
    counter = {"n": 0}

    def make(*roles: str, username: str | None = None, password: str = "correct horse battery"):
        counter["n"] += 1
        user = User.objects.create_user(
            username or f"{'-'.join(roles) or 'norole'}{counter['n']}", password=password
        )
        for role in roles:
            assert role in ROLES
            group, _ = Group.objects.get_or_create(name=role)
            user.groups.add(group)
        return user

    return make


@pytest.fixture
def admin_user(make_operator):
    return make_operator("admin", username="root-admin")


@pytest.fixture
def api(admin_user):
    """An API client authenticated as an admin (force_authenticate)."""
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def make_agent(admin_user):
    counter = {"n": 0}

    def make(
        name: str | None = None, *, assessed: bool = True, tier: int = 2, owner=None, **kwargs
    ):
        counter["n"] += 1
        agent = services.register_agent(
            name=name or f"agent-{counter['n']}", by=owner or admin_user, **kwargs
        )
        return mark_assessed(agent, tier) if assessed else agent

    return make


@pytest.fixture
def agent_with_key(make_agent, admin_user):
    agent = make_agent("keyed-agent")
    _, key = services.issue_key(agent, by=admin_user)
    return agent, key


# --- live server (uvicorn: HTTP + websockets) and browser ------------------------------
@pytest.fixture(scope="session", autouse=True)
def _no_pool_in_the_test_process(django_db_setup, django_db_blocker):
    """The test process talks to PostgreSQL without the connection pool a server uses.

    Live-server tests stop uvicorn with requests in flight (a browser's polling, a
    websocket's fetch); each such request's thread is stranded with its connection, which
    a pool never gets back, and in CI the pool of the test process ran dry (PoolTimeout)
    late in the run. Unpooled, a stranded connection is closed at the end of its test
    (``_close_server_connections``). The pool itself is exercised where it runs for real:
    the private production stacks of tests/faults and tests/load, and the benchmarks.
    """
    conn = connections["default"]
    options = conn.settings_dict.get("OPTIONS", {})
    if options.get("pool"):
        with django_db_blocker.unblock():
            conn.close()
            conn.close_pool()
        options.pop("pool")
    yield


# --- live server (uvicorn: HTTP + websockets) and browser ------------------------------
@pytest.fixture
def asgi_server(transactional_db):
    """The real ASGI application on uvicorn, in a thread, against the test database."""
    from django.db import connections as handler

    from tests.liveserver import LiveServer

    # Server threads must close their connections after each request, or the test
    # database cannot be dropped at the end of the run.
    db_settings = handler.settings["default"]
    saved_age = db_settings.get("CONN_MAX_AGE", 0)
    db_settings["CONN_MAX_AGE"] = 0
    server = LiveServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        db_settings["CONN_MAX_AGE"] = saved_age
        _close_server_connections()


def _close_server_connections() -> None:
    """Connections left open by server threads would stop the test database from being
    dropped at the end of the run; on PostgreSQL, end them."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    if connection.pool is not None:
        return  # pooled: the server threads gave theirs back; the pool closes them at the end
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    from tests.liveserver import launch_browser

    playwright, chromium = launch_browser()
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()
