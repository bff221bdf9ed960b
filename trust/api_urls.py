"""API routes of this app (mounted under /api/v1/)."""

from django.urls import path

from . import api

urlpatterns = [
    path(
        "agents/<str:agent_id>/trust-history",
        api.TrustHistoryView.as_view(),
        name="api-agent-trust-history",
    ),
    path(
        "agents/<str:agent_id>/trust/recalculate",
        api.RecalculateView.as_view(),
        name="api-agent-trust-recalculate",
    ),
]
