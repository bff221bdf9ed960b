"""The Warden project: settings, URLs, ASGI, Celery, and the agent registry."""

from .celery import app as celery_app

__all__ = ["celery_app"]
