"""Operators log in with throttling; logins, logouts and failures are events (SPEC §6, §8)."""

from tests.helpers import events_of


def test_login_and_logout_are_events(client, make_operator):
    make_operator("viewer", username="vera", password="a long password 1")
    response = client.post("/login/", {"username": "vera", "password": "a long password 1"})
    assert response.status_code == 302
    client.post("/logout/")
    assert [e.actor for e in events_of("operator.login")] == ["user:vera"]
    assert [e.actor for e in events_of("operator.logout")] == ["user:vera"]


def test_failed_logins_are_recorded_and_throttled(client, make_operator):
    make_operator("viewer", username="vic", password="the right password")
    for _ in range(5):
        response = client.post("/login/", {"username": "vic", "password": "wrong"})
        assert response.status_code in (200, 429)
    failed = events_of("operator.login_failed")
    assert (
        len(failed) >= 5 and failed[0].result == "failed" and failed[0].payload["username"] == "vic"
    )
    # Locked out now, even with the right password.
    response = client.post("/login/", {"username": "vic", "password": "the right password"})
    assert response.status_code == 429
    assert "Too many failed logins" in response.content.decode()
    assert not events_of("operator.login")


def test_a_console_session_ends_after_eight_idle_hours_and_each_request_renews_it(
    client, make_operator
):
    import datetime as dt

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    make_operator("viewer", username="ida", password="a long password 1")
    client.post("/login/", {"username": "ida", "password": "a long password 1"})
    [session] = Session.objects.all()
    left = session.expire_date - timezone.now()
    assert dt.timedelta(hours=7, minutes=59) < left <= dt.timedelta(hours=8)

    Session.objects.update(expire_date=timezone.now() + dt.timedelta(minutes=5))
    assert client.get("/agents/").status_code == 200  # renewed by the request
    assert Session.objects.get().expire_date - timezone.now() > dt.timedelta(hours=7)

    Session.objects.update(expire_date=timezone.now() - dt.timedelta(seconds=1))
    assert client.get("/agents/")["Location"].startswith("/login/")
