"""Operator login, logout and failed-login events (SPEC §6)."""

from __future__ import annotations

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
