"""Operator login, logout, failed-login and lockout events (SPEC §6, §8)."""

from __future__ import annotations

from axes.helpers import get_failure_limit
from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver

from .services import record


def _client(request) -> dict:
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:200],
    }


@receiver(user_logged_in)
def on_login(sender, request, user, **kwargs):
    with transaction.atomic():
        record("operator.login", actor=f"user:{user.get_username()}", payload=_client(request))


@receiver(user_logged_out)
def on_logout(sender, request, user, **kwargs):
    if user is None:
        return
    with transaction.atomic():
        record("operator.logout", actor=f"user:{user.get_username()}", payload=_client(request))


@receiver(user_login_failed)
def on_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    with transaction.atomic():
        record(
            "operator.login_failed",
            actor=f"user:{username}" if username else "system:auth",
            result="failed",
            reason="wrong username or password",
            payload=_client(request) | {"username": username},
        )


@receiver(user_locked_out)
def on_locked_out(sender, request=None, username=None, ip_address=None, **kwargs):
    # axes sends this for the failure that reaches the limit and again for every attempt
    # made while locked (each is a login_failed event already, and restarts the cool-off):
    # the lockout event is the first.
    failures = getattr(request, "axes_failures_since_start", None)
    credentials = getattr(request, "axes_credentials", None)
    if failures is None or failures != get_failure_limit(request, credentials):
        return
    username = str(username or "")[:150]
    with transaction.atomic():
        record(
            "operator.locked_out",
            actor=f"user:{username}" if username else "system:auth",
            result="denied",
            reason=f"{failures} failed logins: locked out for {settings.AXES_COOLOFF_TIME}",
            payload=_client(request) | {"username": username, "failures": failures},
        )
