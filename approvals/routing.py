"""Websocket routes of the approval queue."""

websocket_urlpatterns: list = []
