"""Warden's URLs plus ``POST /bench/bare``: a DRF endpoint that authenticates the same agent
key and inserts one row — the floor a governed proposal is compared with."""

from __future__ import annotations

import json

from django.db import connection, transaction
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from console.api.base import AgentEndpoint

BARE_TABLE = "bench_bare_row"


class BareView(AgentEndpoint, APIView):
    def post(self, request):
        body = json.dumps(request.data)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {BARE_TABLE} (agent_id, created_at, body) VALUES (%s, now(), %s)",
                [request.user.agent.id, body],
            )
        return Response({"ok": True})


urlpatterns = [
    path("bench/bare", BareView.as_view(), name="bench-bare"),
    path("", include("console.urls")),
]
