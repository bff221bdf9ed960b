"""Websocket routes of the approval queue."""

from django.urls import path

from .consumers import QueueConsumer

websocket_urlpatterns = [
    path("ws/approvals/", QueueConsumer.as_asgi()),
]
