"""Login throttling (django-axes) and the client address it counts against (SPEC §8).

Five failed logins for one username from one address lock that login for the cool-off,
even with the right password; the lockout itself is one ``operator.locked_out`` event.
The address is the TCP peer: ``X-Forwarded-For`` is believed only from the reverse
proxies named in ``WARDEN_TRUSTED_PROXIES`` (``manage.py serve`` → uvicorn).
"""

from __future__ import annotations

import re
import threading
import time

import httpx
import pytest
import uvicorn
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, override_settings

from console.management.commands.serve import proxy_options
from tests.helpers import events_of
from tests.liveserver import free_port
from tests.security.cspcheck import inline_code_problems

PASSWORD = "the right password 42"
LIMIT = settings.AXES_FAILURE_LIMIT


def _fail(client, username, times, **extra):
    for _ in range(times):
        response = client.post("/login/", {"username": username, "password": "wrong"}, **extra)
        assert response.status_code in (200, 429)
    return response


def test_the_limit_locks_the_login_and_records_one_lockout_event(make_operator):
    make_operator("viewer", username="lena", password=PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.7")
    assert _fail(client, "lena", LIMIT - 1).status_code == 200  # still the login form
    assert not events_of("operator.locked_out")
    assert _fail(client, "lena", 1).status_code == 429
    response = client.post("/login/", {"username": "lena", "password": PASSWORD})
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed logins" in response.content.decode()
    assert not inline_code_problems(response)  # the lockout page keeps to the CSP too
    _fail(client, "lena", 2)  # more attempts while locked: no new lockout events
    (locked,) = events_of("operator.locked_out")
    assert (locked.actor, locked.result) == ("user:lena", "denied")
    assert locked.payload["username"] == "lena" and locked.payload["failures"] == LIMIT
    assert locked.payload["ip"] == "203.0.113.7"
    assert len(events_of("operator.login_failed")) == LIMIT + 3
    assert not events_of("operator.login")


def test_the_lock_is_per_username_and_address(make_operator):
    make_operator("viewer", username="lena", password=PASSWORD)
    make_operator("viewer", username="omar", password=PASSWORD)
    _fail(Client(REMOTE_ADDR="203.0.113.7"), "lena", LIMIT)
    # Another operator from the same address, and the same operator elsewhere, log in.
    other = Client(REMOTE_ADDR="203.0.113.7")
    assert other.post("/login/", {"username": "omar", "password": PASSWORD}).status_code == 302
    elsewhere = Client(REMOTE_ADDR="198.51.100.20")
    assert elsewhere.post("/login/", {"username": "lena", "password": PASSWORD}).status_code == 302


def test_a_success_before_the_limit_resets_the_count(make_operator):
    make_operator("viewer", username="lena", password=PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.7")
    _fail(client, "lena", LIMIT - 1)
    assert client.post("/login/", {"username": "lena", "password": PASSWORD}).status_code == 302
    client.post("/logout/")
    assert _fail(client, "lena", LIMIT - 1).status_code == 200
    assert not events_of("operator.locked_out")


def test_x_forwarded_for_does_not_change_the_counted_address(make_operator):
    """A client that makes up a new X-Forwarded-For per attempt is still locked out."""
    make_operator("viewer", username="lena", password=PASSWORD)
    client = Client(REMOTE_ADDR="203.0.113.7")
    for n in range(LIMIT):
        client.post(
            "/login/",
            {"username": "lena", "password": "wrong"},
            HTTP_X_FORWARDED_FOR=f"10.0.0.{n}",
        )
    response = client.post(
        "/login/", {"username": "lena", "password": PASSWORD}, HTTP_X_FORWARDED_FOR="10.9.9.9"
    )
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.7"}


# --- through uvicorn, as `manage.py serve` configures it --------------------------------
class _Server:
    def __init__(self):
        self.port = free_port()
        config = uvicorn.Config(
            "console.asgi:application",
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            log_level="warning",
            **proxy_options(),
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def _failed_login_from(url: str, forwarded_for: str) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        page = http.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = http.post(
            "/login/",
            data={"username": "lena", "password": "wrong", "csrfmiddlewaretoken": token},
            headers={"X-Forwarded-For": forwarded_for, "Referer": url + "/login/"},
        )
        assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("trusted", "expected"),
    [([], "127.0.0.1"), (["127.0.0.1"], "192.0.2.55")],
    ids=["no-trusted-proxy", "behind-trusted-proxy"],
)
def test_served_client_address_follows_only_trusted_proxies(make_operator, trusted, expected):
    make_operator("viewer", username="lena", password=PASSWORD)
    with override_settings(WARDEN_TRUSTED_PROXIES=trusted), _Server() as url:
        _failed_login_from(url, "192.0.2.55")
    (failed,) = events_of("operator.login_failed")
    assert failed.payload["ip"] == expected
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == [expected]
